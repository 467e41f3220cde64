"""One session from request to cancel, as the execution service and a gateway drive it.

For session ``i``: ask for offers (``POST /requests``) for a desktop session (image cached at
the site) that needs the Rucio file ``demo:bench-i``; start an SSE and a long-poll follower
on the first offer; accept it (the clock starts just before the ``POST``; the broker rejects
the offer's siblings itself); wait for AVAILABLE; cancel; and let both
followers see the end. A desktop session is emulated by Skaha without a process, so its
start is exactly the configured start latency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from follow import LongPollFollower, Received, SseFollower, event_seconds
from site_process import file_name

from worksteps.schema import kinds

__all__ = ["SessionRun", "desktop_request", "run_session"]

_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_DESKTOP = "skaha/desktop:1.0"  # cached at the rig's Harbor


@dataclass
class SessionRun:
    """What one session left: the client's clocks and both followers' receipts."""

    index: int
    uuid: str
    accept_sent: float  # time.time() just before POST accept
    accept_answered: float
    available: Received | None  # SSE receipt of AVAILABLE (None: failed or timed out)
    events: list[Received]  # every SSE event, live, in order
    polls: list[Received]  # every long-poll answer
    long_poll_changes: list[Received] = field(default_factory=list)
    error: str | None = None


def desktop_request(registry: str, index: int) -> dict[str, Any]:
    name = file_name(index)
    return {
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": f"desktop-{index}"},
            "image": {"locations": [f"{registry}/{_DESKTOP}"]},
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}, "memory": {"min": 1}},
        "data": [
            {
                "kind": kinds.DATA_RUCIO,
                "meta": {"name": name},
                "rucio": {"scope": "demo", "object": name},
            }
        ],
        "schedule": {"requested": {"duration": "PT30M"}},
    }


async def _update(client: httpx.AsyncClient, uuid: str, phase: str) -> None:
    change = {"kind": "uri:enum-value-update", "path": "phase", "value": phase}
    answer = await client.post(f"/sessions/{uuid}", json=change, headers=_JSON)
    if answer.status_code != 200:
        raise RuntimeError(f"{phase} {uuid}: HTTP {answer.status_code} {answer.text[:300]}")


async def run_session(
    url: str, registry: str, index: int, *, limit: float = 60.0, long_poll_wait: float = 30.0
) -> SessionRun:
    """Drive session ``index`` through its life, giving each wait ``limit`` seconds; raise
    only on a broken broker answer."""
    limits = httpx.Timeout(limit + long_poll_wait)
    async with (
        httpx.AsyncClient(base_url=url, timeout=limits) as api,
        httpx.AsyncClient(base_url=url, timeout=limits) as sse_client,
        httpx.AsyncClient(base_url=url, timeout=limits) as poll_client,
    ):
        answer = await api.post("/requests", json=desktop_request(registry, index), headers=_JSON)
        if answer.status_code != 303 or answer.json().get("result") != "YES":
            raise RuntimeError(f"offers for session {index}: {answer.status_code} {answer.text}")
        uuid = str(answer.json()["offers"][0]["meta"]["uuid"])
        sse = SseFollower(sse_client, uuid)
        poll = LongPollFollower(poll_client, uuid, wait=long_poll_wait)
        tasks = [asyncio.create_task(sse.run()), asyncio.create_task(poll.run())]
        try:
            async with asyncio.timeout(10):
                await sse.listening.wait()
                await poll.listening.wait()
            await asyncio.sleep(0.05)  # the long-poll request reaches the server and waits
            accept_sent = time.time()
            await _update(api, uuid, "ACCEPTED")
            accept_answered = time.time()
            available = await sse.wait_phase({"AVAILABLE", "FAILED"}, limit)
            error = None
            if available is None or available.body.get("phase") != "AVAILABLE":
                error = "no AVAILABLE" if available is None else str(available.body)
                available = None
            # the long-poll client sees AVAILABLE (or a later phase) before the cancel
            await poll.wait_phase({"AVAILABLE", "RUNNING", "FAILED"}, 5.0)
            await _update(api, uuid, "CANCELLED")
            async with asyncio.timeout(limit):
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    live = [r for r in sse.received if event_seconds(r.body) >= accept_sent]
    return SessionRun(
        index=index,
        uuid=uuid,
        accept_sent=accept_sent,
        accept_answered=accept_answered,
        available=available,
        events=live,
        polls=poll.received,
        long_poll_changes=poll.observed_changes(),
        error=error,
    )
