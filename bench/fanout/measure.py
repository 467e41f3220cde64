"""One configuration measured: the product's execution service asks the emulated brokers.

The measuring process runs :class:`worksteps.execution.service.ExecutionService` itself, as
``worksteps serve execution`` does (its own SQLite store, its own connection pool, the sites as
a registry), and times :meth:`~ExecutionService.execute` from call to return: intake of the
body, the concurrent fan-out with its deadline (``execution/fanout.py``), ranking, and the
execution with all its offers written to the store. Start-up's objects are frozen out of the
collector's full passes, as the service's app does. The service's HTTP layer and token check
are not in the path (no OIDC issuer is needed); the bearer token is passed on to the brokers
and names the repetition, so the emulated brokers can say afterwards what each one took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from broker_process import ServedBroker

from worksteps.core.auth import AuthSettings, Principal
from worksteps.core.serving import freeze_start_up
from worksteps.execution.registry import Registry, Site
from worksteps.execution.service import ExecutionService
from worksteps.execution.settings import ExecutionSettings, RateLimitSettings
from worksteps.schema import kinds

__all__ = ["Measurement", "Repetition", "measure", "notebook_request"]


@dataclass(frozen=True)
class Repetition:
    """One execution: seconds from call to return, and what the brokers did meanwhile.

    The brokers' times are the emulated brokers' own (request head in → answer handed to the
    server). Both processes read the same clock (``CLOCK_MONOTONIC``), so ``sent`` and
    ``after`` place the brokers' work inside the call.
    """

    total: float
    slowest: float  # the slowest healthy broker's time
    sent: float  # call → the last healthy broker has the request
    after: float  # the last healthy answer handed over → return
    missed: int  # healthy brokers whose offers are not in the execution
    cpu: float  # CPU seconds of the measuring process during the call


@dataclass
class Measurement:
    """The timed repetitions of one configuration, and the first (cold) one apart."""

    brokers: int
    hanging: bool
    deadline: float
    slowest_configured: float
    cold: Repetition | None = None
    repetitions: list[Repetition] = field(default_factory=list)


def notebook_request(now: datetime) -> dict[str, Any]:
    """A Jupyter notebook on 2 cores and 4 GiB for an hour, to start within a day."""
    return {
        "executable": {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "notebook"},
            "location": "https://example.org/notebooks/analysis.ipynb",
        },
        "compute": {
            "kind": kinds.COMPUTE_SIMPLE,
            "meta": {"name": "compute"},
            "cores": {"min": 2, "max": 4},
            "memory": {"min": 4, "max": 8},
        },
        "schedule": {
            "requested": {
                "start": f"{now.isoformat().replace('+00:00', 'Z')}/PT24H",
                "duration": "PT1H",
            }
        },
    }


def _settings(workdir: Path, sites: list[ServedBroker], deadline: float) -> ExecutionSettings:
    return ExecutionSettings(
        database_url=f"sqlite:///{workdir / 'execution.sqlite'}",
        sites=[Site(name=s.name, url=s.url) for s in sites],
        # never asked: execute() is called with a principal, not through the HTTP API
        auth=AuthSettings(issuer="http://127.0.0.1:9/unused"),
        deadline=deadline,
        max_deadline=deadline,
        # a hanging broker's call is given up this long after it began (each run leaves one)
        late_grace=max(deadline, 2.0),
        health_interval=0,
        rate_limit=RateLimitSettings(rate=10_000, burst=100_000),
    )


async def _one(
    service: ExecutionService,
    observer: httpx.AsyncClient,
    body: dict[str, Any],
    token: str,
    healthy: set[str],
) -> Repetition:
    principal = Principal(subject="bench-user", name="bench-user", token=token)
    cpu = time.process_time()
    started = time.monotonic()
    record = await service.execute(principal, body)
    returned = time.monotonic()
    cpu = time.process_time() - cpu
    answered = (await observer.get("/_bench/observed", params={"token": token})).json()
    offered = {b.site for b in record.brokers if b.status == "offers"}
    stamps = [(float(a), float(b)) for name, (a, b) in answered.items() if name in healthy]
    nan = float("nan")
    return Repetition(
        total=returned - started,
        slowest=max((b - a for a, b in stamps), default=nan),
        sent=max((a for a, _ in stamps), default=nan) - started,
        after=returned - max((b for _, b in stamps), default=nan),
        missed=len(healthy - offered),
        cpu=cpu,
    )


async def measure(
    sites: list[ServedBroker],
    *,
    deadline: float,
    repetitions: int,
    warmup: int,
    workdir: Path,
    label: str,
) -> Measurement:
    """Run ``warmup`` untimed executions (the first kept as the cold one: every connection
    opened), then ``repetitions`` timed ones, back to back, against ``sites``."""
    healthy = {s.name for s in sites if s.latency is not None}
    result = Measurement(
        brokers=len(sites),
        hanging=len(healthy) < len(sites),
        deadline=deadline,
        slowest_configured=max((s.latency or 0.0) for s in sites),
    )
    settings = _settings(workdir, sites, deadline)
    service = ExecutionService(settings, Registry(list(settings.sites)))
    await service.start()
    freeze_start_up()  # as the service's app does once started
    try:
        async with httpx.AsyncClient(base_url=sites[0].url, timeout=10.0) as observer:
            now = datetime.now(UTC) + timedelta(minutes=5)
            body = {"request": notebook_request(now), "deadline": deadline}
            for index in range(warmup + repetitions):
                token = f"{label}-{index}"
                repetition = await _one(service, observer, body, token, healthy)
                if index == 0:
                    result.cold = repetition
                if index >= warmup:
                    result.repetitions.append(repetition)
    finally:
        await service.aclose()
    return result
