"""The tables: overhead per configuration, where it goes, each step, notification latency;
the issue's targets; and the results file (``bench/prepare/RESULTS.md``)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis import SEGMENTS, Analysed
from calibrate import Direct

__all__ = ["Config", "Outcome", "percentile", "render", "targets"]

MAX_OVERHEAD_MEDIAN_MS = 150.0
MAX_NOTICE_P99_MS = 100.0
_CHANNELS = ("sse", "long-poll")


@dataclass(frozen=True)
class Config:
    engine: str  # "sqlite" or "postgresql"
    polling: dict[str, float] = field(default_factory=dict)  # EngineSettings overrides

    @property
    def label(self) -> str:
        if not self.polling:
            return f"{self.engine}, engine defaults"
        tuned = ", ".join(f"{k}={v:g}s" for k, v in self.polling.items())
        return f"{self.engine}, {tuned}"


@dataclass
class Outcome:
    config: Config
    sessions: list[Analysed]
    failed: int
    broker_cpu: float  # s over the measured sessions
    loop_cpu: float  # s of it in the main thread (the event loop)
    site_cpu: float  # s the emulated site's process used meanwhile
    site_calls: int  # requests the emulators received during the measured sessions
    transactions: int | None  # database transactions in that time (PostgreSQL only)
    seconds: float
    load: float  # 1-minute load average when the configuration began


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (NaN when empty)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{1000 * seconds:.0f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def overhead_table(outcomes: Sequence[Outcome], markdown: bool) -> str:
    head = (
        "configuration",
        "sessions",
        "critical path ms",
        "accept→AVAILABLE p50",
        "p99",
        "overhead p50 ms",
        "overhead p99 ms",
        "broker CPU ms/session",
        "of it event loop",
        "site CPU ms/session",
        "site calls/session",
        "DB tx/session",
        "failed",
    )
    rows = []
    for o in outcomes:
        n = len(o.sessions)
        rows.append(
            (
                o.config.label,
                str(n),
                _ms(percentile((s.critical for s in o.sessions), 50)),
                _ms(percentile((s.client for s in o.sessions), 50)),
                _ms(percentile((s.client for s in o.sessions), 99)),
                _ms(percentile((s.overhead for s in o.sessions), 50)),
                _ms(percentile((s.overhead for s in o.sessions), 99)),
                f"{1000 * o.broker_cpu / n:.0f}" if n else "-",
                f"{o.loop_cpu / o.broker_cpu:.0%}" if o.broker_cpu else "-",
                f"{1000 * o.site_cpu / n:.0f}" if n else "-",
                f"{o.site_calls / n:.0f}" if n else "-",
                f"{o.transactions / n:.0f}" if n and o.transactions is not None else "-",
                str(o.failed),
            )
        )
    return _table(head, rows, markdown)


def segment_table(outcomes: Sequence[Outcome], direct: Sequence[Direct], markdown: bool) -> str:
    """Medians per segment; with ``direct`` runs, a last column: the site alone."""
    site = (f"site alone ({len(direct)} direct runs, 5 ms polls)",) if direct else ()
    head = ("segment (median ms)", *(o.config.label for o in outcomes), *site)
    rows = []
    for name in SEGMENTS:
        cells = [_ms(percentile((s.segments[name] for s in o.sessions), 50)) for o in outcomes]
        if direct:
            cells.append(_ms(percentile((d.segments[name] for d in direct), 50)))
        rows.append((name, *cells))
    total = [_ms(percentile((s.overhead for s in o.sessions), 50)) for o in outcomes]
    if direct:
        total.append(_ms(percentile((d.overhead for d in direct), 50)))
    rows.append(("overhead (p50 of the total)", *total))
    return _table(head, rows, markdown)


def step_table(outcomes: Sequence[Outcome], markdown: bool) -> str:
    head = (
        "step: SUBMITTED→DONE p50 / p99 ms (polls p50)",
        "emulated ms",
        *(o.config.label for o in outcomes),
    )
    rows = []
    for kind in ("area", "image", "stage", "place", "launch"):
        emulated = [s.steps[kind][1] for o in outcomes for s in o.sessions if kind in s.steps]
        cells = []
        for o in outcomes:
            measured = [s.steps[kind][0] for s in o.sessions if kind in s.steps]
            polls = percentile((s.polls[kind] for s in o.sessions if kind in s.polls), 50)
            cells.append(
                f"{_ms(percentile(measured, 50))} / {_ms(percentile(measured, 99))} ({polls:g})"
            )
        rows.append((kind, _ms(percentile(emulated, 50)), *cells))
    return _table(head, rows, markdown)


def notice_table(outcomes: Sequence[Outcome], markdown: bool) -> str:
    head = ("configuration", "follower", "changes", "count", "p50 ms", "p99 ms", "max ms")
    rows = []
    for o in outcomes:
        notices = [n for s in o.sessions for n in s.notices]
        groups = (
            ("sse", "phase", None, "phase, all"),
            ("sse", "phase", "api", "phase, by API"),
            ("sse", "phase", "engine", "phase, by engine"),
            ("sse", "other", None, "step/progress events"),
            ("long-poll", "phase", None, "phase, all"),
            ("long-poll", "phase", "api", "phase, by API"),
            ("long-poll", "phase", "engine", "phase, by engine"),
        )
        for channel, kind, origin, label in groups:
            ms = [
                n.ms
                for n in notices
                if n.channel == channel and n.kind == kind and origin in (None, n.origin)
            ]
            rows.append(
                (
                    o.config.label,
                    channel,
                    label,
                    str(len(ms)),
                    f"{percentile(ms, 50):.1f}",
                    f"{percentile(ms, 99):.1f}",
                    f"{max(ms, default=math.nan):.1f}",
                )
            )
        missed = sum(s.missed_by_long_poll for s in o.sessions)
        if missed:
            rows.append(
                (o.config.label, "long-poll", "phases coalesced (unseen)", str(missed), "", "", "")
            )
    return _table(head, rows, markdown)


def phase_table(outcomes: Sequence[Outcome], markdown: bool) -> str:
    head = ("phase: p50 / p99 ms", *(f"{o.config.label}: {c}" for o in outcomes for c in _CHANNELS))
    rows = []
    for phase in ("ACCEPTED", "WAITING", "PREPARING", "AVAILABLE", "CANCELLED"):
        cells = []
        for o in outcomes:
            for channel in _CHANNELS:
                ms = [
                    n.ms
                    for s in o.sessions
                    for n in s.notices
                    if n.channel == channel and n.phase == phase
                ]
                cells.append(f"{percentile(ms, 50):.0f} / {percentile(ms, 99):.0f}" if ms else "-")
        rows.append((phase, *cells))
    return _table(head, rows, markdown)


def targets(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        median = 1000 * percentile((s.overhead for s in o.sessions), 50)
        verdict = "met" if median <= MAX_OVERHEAD_MEDIAN_MS else "MISSED"
        lines.append(
            f"- {o.config.label}: overhead median <= {MAX_OVERHEAD_MEDIAN_MS:.0f} ms: "
            f"{verdict} ({median:.0f} ms)"
        )
        for channel in ("sse", "long-poll"):
            ms = [
                n.ms
                for s in o.sessions
                for n in s.notices
                if n.channel == channel and n.kind == "phase"
            ]
            p99 = percentile(ms, 99)
            verdict = "met" if p99 <= MAX_NOTICE_P99_MS else "MISSED"
            lines.append(
                f"- {o.config.label}: {channel} phase-change p99 <= {MAX_NOTICE_P99_MS:.0f} ms: "
                f"{verdict} ({p99:.1f} ms)"
            )
    return lines


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def render(
    outcomes: Sequence[Outcome],
    direct: Sequence[Direct],
    *,
    markdown: bool,
    site: str,
    notes: Sequence[str] = (),
) -> str:
    parts = [
        "Accept → AVAILABLE (client-observed through SSE), against the emulated critical path:",
        overhead_table(outcomes, markdown),
        "Where the overhead goes (along the critical chain stage → place → launch):",
        segment_table(outcomes, direct, markdown),
        "Steps, from their SUBMITTED event to their DONE event:",
        step_table(outcomes, markdown),
        "Phase change (and other event) to client, from the event's server time:",
        notice_table(outcomes, markdown),
        "The same by phase (ACCEPTED and WAITING share one transaction; a long-poll sees WAITING):",
        phase_table(outcomes, markdown),
        "Targets:",
        "\n".join(targets(outcomes)),
        f"Site: {site}.",
        *notes,
    ]
    return "\n\n".join(parts)
