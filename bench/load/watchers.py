"""Part (b): a thousand server-sent-event watchers on the gateway while sessions change phase.

The watchers are split over ``lanes``; each lane is one user running sessions one after the
other (headless ``sleep 600`` jobs, as in part a), and its watchers follow the lane's current
session at ``/api/executions/{id}/events``. A lane selects its next session, moves its
watchers onto it, and only then cancels the previous one, so every watcher always has a
stream open and sees both ends of a session live: AVAILABLE and RUNNING after a select,
RELEASING and CANCELLED after a cancel (plus the steps and progress in between). A session
is held ``hold`` seconds; the lanes start one after the other, spread over one hold, so their
switches are spread in time as people's are. What is measured is the ``duration`` seconds
after that ramp, when every lane runs.

Notification latency: for each event a watcher reads, the wall-clock time it was read minus
the ``time`` the broker gave the event (when it changed the session: same machine, same
clock). Events older than the watcher's connection are replays, not notifications, and are
not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from children import rss_mb
from sse import EventStream, StreamRefused

from worksteps.emulators.oidc import LocalIssuer

__all__ = ["WatchResult", "run_watchers"]

FINAL = ("COMPLETED", "CANCELLED", "FAILED", "EXPIRED", "REJECTED")


@dataclass
class WatchResult:
    phase_latencies: list[float] = field(default_factory=list)  # s, phase events only
    by_phase: dict[str, list[float]] = field(default_factory=dict)  # s, per phase reached
    latencies: list[float] = field(default_factory=list)  # s, every event
    open_streams: list[int] = field(default_factory=list)  # sampled every 0.5 s
    gateway_rss: list[float] = field(default_factory=list)  # MiB, sampled with them
    federation_rss: list[float] = field(default_factory=list)
    sessions: int = 0  # in the whole run, ramp included
    streams: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0


class _Watchers:
    """The shared counters and the lists every watcher appends to."""

    def __init__(self, result: WatchResult, start: float, end: float) -> None:
        self.result = result
        self.open = 0
        self.start, self.end = start, end  # the measured window (wall clock)

    def measuring(self, moment: float) -> bool:
        return self.start <= moment < self.end

    async def watch(self, url: str, token: str, running: asyncio.Event) -> None:
        """Follow one execution's events until its session's final phase."""
        try:
            async with EventStream(url, token) as stream:
                self.open += 1
                self.result.streams += 1
                try:
                    async for event in stream:
                        self._note(event.event, event.data, event.received, stream.connected)
                        if event.event == "phase" and '"RUNNING"' in event.data:
                            running.set()
                        if event.event == "phase" and any(f'"{p}"' in event.data for p in FINAL):
                            return
                finally:
                    self.open -= 1
        except StreamRefused as exc:
            self.result.refused += 1
            self.result.errors.append(str(exc))
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.result.errors.append(f"stream broke: {exc!r}")

    def _note(self, kind: str, data: str, received: float, connected: float) -> None:
        try:
            body = json.loads(data)
            at = datetime.fromisoformat(body["time"]).timestamp()
        except (ValueError, KeyError, TypeError):
            return  # a relay note: no broker time
        if at < connected:
            return  # happened before this watcher was there: a replay
        if not self.measuring(at):
            return  # during the ramp, or after
        self.result.latencies.append(received - at)
        if kind == "phase":
            self.result.phase_latencies.append(received - at)
            self.result.by_phase.setdefault(str(body.get("phase")), []).append(received - at)


async def _lane(
    http: httpx.AsyncClient,
    api: str,
    token: str,
    count: int,
    watchers: _Watchers,
    deadline: float,
    hold: float,
    delay: float,
) -> None:
    await asyncio.sleep(delay)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    made = (
        await http.post(
            f"{api}/worksteps/from-template", json={"template": "python-script"}, headers=headers
        )
    ).json()
    executable = made["executable"] | {"command": ["sleep", "600"]}
    edit = {"executable": executable, "version": made["version"]}
    await http.put(f"{api}/worksteps/{made['uuid']}/executable", json=edit, headers=headers)
    request = (await http.get(f"{api}/worksteps/{made['uuid']}/request", headers=headers)).json()
    previous: tuple[str, list[asyncio.Task[None]]] | None = None
    while time.monotonic() < deadline or previous is not None:
        current: tuple[str, list[asyncio.Task[None]]] | None = None
        if time.monotonic() < deadline:
            body = {"request": request}
            answer = await http.post(f"{api}/executions", json=body, headers=headers)
            execution = answer.json()
            if answer.status_code != 201 or not execution.get("offers"):
                watchers.result.errors.append(f"execute: {answer.status_code} {answer.text[:200]}")
                await asyncio.sleep(1)
                continue
            best = min(execution["offers"], key=lambda o: o["rank"])
            chosen = {"offer": best["offer"]}
            selected = f"{api}/executions/{execution['id']}/select"
            await http.post(selected, json=chosen, headers=headers)
            watchers.result.sessions += 1
            running = asyncio.Event()
            url = f"{api}/executions/{execution['id']}/events"
            tasks = [asyncio.create_task(watchers.watch(url, token, running)) for _ in range(count)]
            current = (execution["id"], tasks)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.wait(), 30)
        if previous is not None:  # its watchers have moved on: end it, they see it end
            await http.post(f"{api}/executions/{previous[0]}/cancel", headers=headers)
            await asyncio.wait(previous[1], timeout=60)
        previous = current
        if current is not None:
            await asyncio.sleep(hold)


async def run_watchers(
    gateway: str,
    issuer: LocalIssuer,
    *,
    watchers: int,
    lanes: int,
    duration: float,
    hold: float,
    pids: dict[str, int],
) -> WatchResult:
    """``watchers`` watchers over ``lanes`` lanes, measured for ``duration`` seconds."""
    result = WatchResult()
    ramp = hold + 5.0
    shared = _Watchers(result, time.time() + ramp, time.time() + ramp + duration)
    api = f"{gateway}/api"
    limits = httpx.Limits(max_connections=lanes * 4, max_keepalive_connections=lanes * 2)
    started = time.monotonic()
    deadline = started + ramp + duration
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        tasks = [
            asyncio.create_task(
                _lane(
                    http,
                    api,
                    issuer.mint(f"watch-lane-{n:03d}"),
                    watchers // lanes + (1 if n < watchers % lanes else 0),
                    shared,
                    deadline,
                    hold,
                    n * hold / lanes,
                )
            )
            for n in range(lanes)
        ]
        while not all(task.done() for task in tasks):
            await asyncio.sleep(0.5)
            if shared.measuring(time.time()):
                result.open_streams.append(shared.open)
                result.gateway_rss.append(rss_mb(pids["gateway"]))
                result.federation_rss.append(rss_mb(pids["federation"]))
        for task in tasks:
            if task.exception() is not None:
                result.errors.append(f"lane failed: {task.exception()!r}")
    result.duration = duration
    return result
