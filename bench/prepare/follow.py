"""Two clients following one session, as a gateway would: server-sent events and long-poll.

Each records what it received and when (``time.time()``, the same clock as the broker's
event ``time`` since both run on this machine), so the latency of a change is the receive
time minus the event's server time. The event ``time`` is taken when the broker begins the
change, before its transaction commits, so the latency includes the commit.

Both followers are started, and known to be listening, before the session is accepted, so
every change after that is a live one (no replay).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

__all__ = ["LongPollFollower", "Received", "SseFollower", "event_seconds"]

TERMINAL = frozenset({"CANCELLED", "COMPLETED", "FAILED", "REJECTED", "EXPIRED"})
_JSON = {"Accept": "application/json"}


def event_seconds(event: dict[str, Any]) -> float:
    """The event's server ``time`` as a POSIX timestamp."""
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Received:
    at: float  # client's time.time() when the message was read
    body: dict[str, Any]


async def _wait_phase(
    received: list[Received], changed: asyncio.Event, phases: set[str], within: float
) -> Received | None:
    """The first receipt with one of ``phases``, waiting at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        for r in received:
            if r.body.get("phase") in phases:
                return r
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), left)


@dataclass
class SseFollower:
    """``GET /sessions/{uuid}/events`` until a terminal phase (or ``stop``)."""

    client: httpx.AsyncClient
    uuid: str
    received: list[Received] = field(default_factory=list)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with self.client.stream("GET", f"/sessions/{self.uuid}/events") as stream:
            stream.raise_for_status()
            self.listening.set()
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                at = time.time()
                event = json.loads(line[5:])
                self.received.append(Received(at, event))
                self.changed.set()
                if event.get("phase") in TERMINAL:
                    return

    async def wait_phase(self, phases: set[str], within: float) -> Received | None:
        return await _wait_phase(self.received, self.changed, phases, within)


@dataclass
class LongPollFollower:
    """``GET /sessions/{uuid}?wait=N`` in a loop, as UWS clients do, until a terminal phase.

    ``received`` holds one entry per answer: ``{"phase": …}``.
    """

    client: httpx.AsyncClient
    uuid: str
    wait: float = 30.0
    received: list[Received] = field(default_factory=list)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        first = await self.client.get(f"/sessions/{self.uuid}", headers=_JSON)
        first.raise_for_status()
        phase = str(first.json()["phase"])
        self.received.append(Received(time.time(), {"phase": phase}))
        while phase not in TERMINAL:
            request = self.client.get(
                f"/sessions/{self.uuid}", params={"wait": self.wait}, headers=_JSON
            )
            self.listening.set()
            answer = await request
            answer.raise_for_status()
            phase = str(answer.json()["phase"])
            self.received.append(Received(time.time(), {"phase": phase}))
            self.changed.set()

    async def wait_phase(self, phases: set[str], within: float) -> Received | None:
        return await _wait_phase(self.received, self.changed, phases, within)

    def observed_changes(self) -> list[Received]:
        """The answers whose phase differs from the answer before (the changes it saw)."""
        seen: list[Received] = []
        for before, after in zip(self.received, self.received[1:], strict=False):
            if after.body["phase"] != before.body["phase"]:
                seen.append(after)
        return seen
