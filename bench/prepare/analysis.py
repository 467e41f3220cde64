"""From one session's receipts to figures: its emulated critical path, its overhead and where
the overhead went, each step's duration, and the latency of every change to each follower.

Emulated durations come from the site's configuration and the steps the broker actually
performed, as their events report them:

- stage: ``transfer_latency + bytes / bandwidth`` (the rule's transfer; 0 if no bytes moved);
- place: ``bytes / storage_bandwidth`` (Cavern's copy into the user's area);
- image: 0 when the image was already at the site, else ``bytes / image_pull_rate``;
- area: 0 (a directory); launch: ``start_latency`` (Skaha's Pending time).

The critical path is ``max(area, image, stage + place for each data) + launch``, and the
overhead is the client's accept-to-AVAILABLE time minus it. Along the critical chain
(stage → place → launch) the overhead splits exactly into the segments of :data:`SEGMENTS`,
using the ``started`` time the worker records in the ``steps`` table when it claims a step
(``pickup`` ends there; a step unblocked by another is claimed in that one's DONE transaction,
at its DONE time, so its pickup is 0 and that transaction counts in its ``submit``), and
``submit`` runs from it to the SUBMITTED event, whose time is taken when the site call returns.
An emulated duration starts during its step's submit call, so a slow submit shows partly in
``submit`` and partly as less ``detection``; the sum is exact either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from database import StepFacts
from drive import SessionRun
from follow import event_seconds
from site_process import SiteConfig

__all__ = ["API_PHASES", "SEGMENTS", "Analysed", "Notice", "analyse"]

API_PHASES = frozenset({"ACCEPTED", "WAITING", "CANCELLED", "REJECTED"})
"""Phases set by a client's request (the route wakes the followers); the rest the engine sets."""

SEGMENTS = (
    "accept → stage pickup",
    "stage submit",
    "stage detection",
    "stage done → place pickup",
    "place submit",
    "place detection",
    "inputs done → launch pickup",
    "launch submit",
    "launch detection",
    "AVAILABLE → client (SSE)",
)
"""The overhead's parts; pickup: until the worker claims the step; submit: until its SUBMITTED
event; detection: SUBMITTED→DONE minus the emulated time."""


@dataclass(frozen=True)
class Notice:
    channel: str  # "sse" or "long-poll"
    origin: str  # "api" or "engine"
    kind: str  # "phase" or "other" (step and progress events, SSE only)
    ms: float
    phase: str = ""


@dataclass
class Analysed:
    index: int
    critical: float  # s
    client: float  # s, accept sent -> AVAILABLE received by SSE
    server: float  # s, accept sent -> AVAILABLE event time
    segments: dict[str, float] = field(default_factory=dict)  # s
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind: (measured, emu)
    polls: dict[str, int] = field(default_factory=dict)  # kind: polls the worker made
    notices: list[Notice] = field(default_factory=list)
    missed_by_long_poll: int = 0

    @property
    def overhead(self) -> float:
        return self.client - self.critical


def _emulated(kind: str, done: dict[str, Any], site: SiteConfig) -> float:
    size = float(done.get("bytes_total") or 0)
    if kind == "stage":
        return site.transfer_latency + size / site.bandwidth if size else 0.0
    if kind == "place":
        return size / site.storage_bandwidth
    if kind == "image":
        return 0.0 if "already" in str(done.get("message", "")) else size / site.image_pull_rate
    if kind == "launch":
        return site.start_latency
    return 0.0


def analyse(run: SessionRun, site: SiteConfig, facts: dict[str, StepFacts]) -> Analysed:
    """``facts``: the session's rows of the ``steps`` table, by step key."""
    if run.available is None:
        raise ValueError(f"session {run.index} did not become AVAILABLE: {run.error}")
    submitted: dict[str, float] = {}
    finished: dict[str, float] = {}
    kinds: dict[str, str] = {}
    emulated: dict[str, float] = {}
    for r in run.events:
        body = r.body
        key = str(body.get("step", ""))
        if body["type"] == "step" and body.get("state") == "SUBMITTED":
            submitted[key] = event_seconds(body)
            kinds[key] = str(body["kind"])
        elif body["type"] == "progress" and body.get("state") == "DONE":
            finished[key] = event_seconds(body)
            emulated[key] = _emulated(str(body["kind"]), body, site)
    stage = next(k for k in kinds if kinds[k] == "stage")
    place = next(k for k in kinds if kinds[k] == "place")
    inputs = [k for k in finished if kinds.get(k) != "launch"]
    chains = [emulated[k] for k in inputs if kinds[k] in ("area", "image")]
    chains.append(emulated[stage] + emulated[place])
    critical = max(chains) + emulated["launch"]
    available_at = event_seconds(run.available.body)
    ready = max(finished[k] for k in inputs)

    def started(key: str) -> float:
        found = facts[key].started
        if found is None:
            raise ValueError(f"session {run.index}: step {key} has no start time")
        return found

    values = (
        started(stage) - run.accept_sent,
        submitted[stage] - started(stage),
        finished[stage] - submitted[stage] - emulated[stage],
        started(place) - finished[stage],
        submitted[place] - started(place),
        finished[place] - submitted[place] - emulated[place],
        started("launch") - ready,
        submitted["launch"] - started("launch"),
        finished["launch"] - submitted["launch"] - emulated["launch"],
        run.available.at - available_at,
    )
    result = Analysed(
        index=run.index,
        critical=critical,
        client=run.available.at - run.accept_sent,
        server=available_at - run.accept_sent,
        segments=dict(zip(SEGMENTS, values, strict=True)),
        steps={
            kinds[k]: (finished[k] - submitted[k], emulated[k]) for k in finished if k in submitted
        },
        polls={kinds[k]: facts[k].polls for k in kinds if k in facts},
    )
    _notices(run, result)
    return result


def _notices(run: SessionRun, result: Analysed) -> None:
    phase_time: dict[str, float] = {}
    for r in run.events:
        phase = r.body.get("phase")
        ms = 1000 * (r.at - event_seconds(r.body))
        if r.body["type"] == "phase" and phase is not None:
            phase_time[str(phase)] = event_seconds(r.body)
            origin = "api" if phase in API_PHASES else "engine"
            result.notices.append(Notice("sse", origin, "phase", ms, str(phase)))
        else:
            result.notices.append(Notice("sse", "engine", "other", ms))
    seen = set()
    for r in run.long_poll_changes:
        phase = str(r.body["phase"])
        seen.add(phase)
        if phase in phase_time:
            origin = "api" if phase in API_PHASES else "engine"
            ms = 1000 * (r.at - phase_time[phase])
            result.notices.append(Notice("long-poll", origin, "phase", ms, phase))
    # ACCEPTED and WAITING share one transaction: only WAITING can be seen by a reader
    result.missed_by_long_poll = len(set(phase_time) - seen - {"ACCEPTED"})
