"""The load: realistic notebook requests against a running broker, in rounds, closed loop.

Closed loop with bounded concurrency: ``concurrency`` clients each send their next request as
soon as their previous answer is read, so the broker is always busy and the measured rate is
what it sustains, not what we offered.

Holds. Every offer is a hold on the calendar until it is rejected or expires (5 min). Left
alone, 600 requests would add some 1,200 holds inside the very windows being asked about,
swamping the 1k-booking case and filling the site as the run goes on. So requests go in rounds
of ``round_size``; after each round, outside the timed section, every offer the round received
is REJECTED through the API (``POST /sessions/{uuid}``), which releases its booking. The
calendar therefore holds the preloaded bookings plus at most one round's holds, and the
rejections never compete with a timed request. (A short ``offer_ttl`` was the alternative,
but expiry lags by up to the TTL and the broker's expiry sweeper would run inside the timed
sections.) The rate is the timed requests divided by the timed seconds, each round counted from
its first send to its last answer, so the small drain at the end of a round is included.

The client shares the machine's cores with the broker, so it does as little as it can inside a
round: the bodies are encoded before the round starts, each client sends on its own keep-alive
connection through a minimal HTTP/1.1 client (``http1``; httpx would cost ~2 ms of CPU per
request), and the answers, read in full, are parsed after the round ends. The rejections, not
timed, go through httpx.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from http1 import Http1Connection

from worksteps.schema import kinds

__all__ = ["Measurement", "notebook_request", "run_load"]

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_REJECT = {"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"}
_CORES = ((1, 2), (2, 4), (4, 8))
_DURATIONS = ("PT1H", "PT2H", "PT4H")


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def notebook_request(rng: random.Random, now: datetime, index: int) -> dict[str, Any]:
    """A Jupyter notebook for 1-4 h on a few cores, with a 2 h start window within a day."""
    low, high = rng.choice(_CORES)
    start = now + timedelta(minutes=rng.uniform(10, 24 * 60))
    return {
        "meta": {"name": f"bench-{index}"},
        "executable": {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "notebook"},
            "location": "https://example.org/analysis.ipynb",
        },
        "compute": {
            "kind": kinds.COMPUTE_SIMPLE,
            "meta": {"name": "compute"},
            "cores": {"min": low, "max": high},
            "memory": {"min": 2 * low, "max": 4 * high},
        },
        "schedule": {
            "requested": {"start": f"{_instant(start)}/PT2H", "duration": rng.choice(_DURATIONS)}
        },
    }


@dataclass
class Measurement:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    answered_yes: int = 0
    errors: int = 0
    seconds: float = 0.0  # timed seconds (rounds only, rejections excluded)
    client_cpu: float = 0.0  # CPU seconds of this process during the timed sections
    server_cpu: float = 0.0  # CPU seconds of the broker process during the timed sections
    offers: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors


async def _round(
    connections: list[Http1Connection], bodies: list[bytes], into: Measurement
) -> list[bytes]:
    """Send ``bodies``, one in flight per connection; return the 303 answers' bodies."""
    pending = iter(bodies)
    answers: list[bytes] = []

    async def one_client(connection: Http1Connection) -> None:
        for body in pending:  # shared iterator: each body is taken by exactly one client
            begun = time.perf_counter()
            try:
                status, answer = await connection.post("/requests", body)
            except ConnectionError:
                into.errors += 1
                continue
            latency = time.perf_counter() - begun
            if status != 303:
                into.errors += 1
                continue
            into.latencies.append(latency)
            answers.append(answer)

    await asyncio.gather(*(one_client(c) for c in connections))
    return answers


def _offers(answers: list[bytes], into: Measurement) -> list[str]:
    """The offer UUIDs of a round's answers; counts the answers with offers."""
    offers: list[str] = []
    for answer in answers:
        body = json.loads(answer)
        made = [o["meta"]["uuid"] for o in body.get("offers", [])]
        if body.get("result") == "YES" and made:
            into.answered_yes += 1
        offers.extend(made)
    return offers


async def _reject(client: httpx.AsyncClient, offers: list[str], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(uuid: str) -> None:
        async with gate:
            response = await client.post(f"/sessions/{uuid}", json=_REJECT, headers=JSON)
        if response.status_code != 200:
            raise RuntimeError(f"rejecting offer {uuid}: HTTP {response.status_code}")

    await asyncio.gather(*(one(u) for u in offers))


async def run_load(
    url: str,
    requests: int,
    *,
    concurrency: int,
    round_size: int,
    seed: int,
    server_cpu: Callable[[], float],
    time_limit: float = 60.0,
) -> Measurement:
    """Send ``requests`` offer requests in rounds; every offer is rejected after its round.

    Stops early, after a whole round, once the timed seconds pass ``time_limit``: a broker that
    is far too slow is still measured (with fewer requests, as the table shows), in bounded time.
    """
    rng = random.Random(seed)
    measured = Measurement()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    connections = [Http1Connection(url, JSON) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(c.open() for c in connections))  # not inside a timed round
        async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
            sent = 0
            while sent < requests and measured.seconds < time_limit:
                now = datetime.now(UTC)
                size = min(round_size, requests - sent)
                docs = [notebook_request(rng, now, sent + i) for i in range(size)]
                bodies = [json.dumps(doc).encode() for doc in docs]
                cpu, server, begun = time.process_time(), server_cpu(), time.perf_counter()
                answers = await _round(connections, bodies, measured)
                measured.seconds += time.perf_counter() - begun
                measured.client_cpu += time.process_time() - cpu
                measured.server_cpu += server_cpu() - server
                offers = _offers(answers, measured)
                measured.offers += len(offers)
                await _reject(client, offers, concurrency)
                sent += size
    finally:
        for connection in connections:
            await connection.close()
    return measured
