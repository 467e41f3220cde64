"""The site's own share: the critical chain run straight through the product's site adapters,
without the broker, polling every 5 ms.

The emulated critical path counts only the configured sleeps and bandwidths; the emulators
also spend time of their own (HTTP calls, Rucio's rule bookkeeping, Cavern's UWS job fetching
the replica from the storage door, Skaha's task start), and the adapters spend time in their
client libraries. Driving stage → place → launch directly, with a poll every 5 ms, measures
that floor: what even a perfectly prompt engine would see. The broker's own overhead is then
the broker's figure minus this one, segment by segment (pickup is zero here by definition).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from analysis import SEGMENTS
from site_process import SiteConfig, file_name

from worksteps.site.services import SiteServicesSettings, open_site_services
from worksteps.site.sessions import SessionKind, SessionSpec, SessionStatus
from worksteps.site.staging import DID, StageRequest, StageState
from worksteps.site.storage import TransferPhase

__all__ = ["Direct", "calibrate"]

_TICK = 0.005
_DESKTOP = "skaha/desktop:1.0"


@dataclass(frozen=True)
class Direct:
    """One direct run: its total over the emulated critical path, and its segments (s)."""

    overhead: float
    segments: dict[str, float]


async def _until(check: Callable[[], Awaitable[bool]], limit: float = 30.0) -> float:
    """Poll ``check`` every 5 ms until it is true; the time it became true (s, POSIX)."""
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return time.time()
            await asyncio.sleep(_TICK)


async def _one(services: Any, site: SiteConfig, registry: str, index: int) -> Direct:
    name = file_name(index)
    area = await services.storage.ensure_area(services.user, f"worksteps/calibrate-{index}")
    emulated = {
        "stage": site.transfer_latency + site.file_size / site.bandwidth,
        "place": site.file_size / site.storage_bandwidth,
        "launch": site.start_latency,
    }
    urls: list[str] = []

    async def staged() -> bool:
        status = await services.staging.status(rule)
        if status.state is StageState.FAILED:
            raise RuntimeError(f"calibration: staging {name} failed: {status.message}")
        urls[:] = list(status.urls)
        return bool(status.state is StageState.DONE)

    async def placed() -> bool:
        status = await services.storage.transfer_status(transfer)
        if status.phase.finished and status.phase is not TransferPhase.COMPLETED:
            raise RuntimeError(f"calibration: placing {name} ended {status.phase}")
        return bool(status.phase is TransferPhase.COMPLETED)

    async def running() -> bool:
        info = await services.sessions.get(session)
        if info.status is SessionStatus.FAILED:
            raise RuntimeError(f"calibration: session failed: {info.message}")
        return bool(info.status is SessionStatus.RUNNING and info.connect_url is not None)

    t0 = time.time()
    rule = await services.staging.stage(
        StageRequest(dids=(DID("demo", name),), destination=f"worksteps/calibrate-{index}")
    )
    t1 = time.time()
    t2 = await _until(staged)
    transfer = await services.storage.place(urls[0], f"{area.rstrip('/')}/{name}")
    t3 = time.time()
    t4 = await _until(placed)
    spec = SessionSpec(
        name=f"calibrate-{index}", kind=SessionKind.DESKTOP, image=f"{registry}/{_DESKTOP}"
    )
    session = await services.sessions.launch(spec)
    t5 = time.time()
    t6 = await _until(running)
    await services.sessions.delete(session)
    await services.staging.cancel(rule)
    values = {
        "stage submit": t1 - t0,
        "stage detection": t2 - t1 - emulated["stage"],
        "place submit": t3 - t2,
        "place detection": t4 - t3 - emulated["place"],
        "launch submit": t5 - t4,
        "launch detection": t6 - t5 - emulated["launch"],
    }
    segments = {name: values.get(name, 0.0) for name in SEGMENTS}
    return Direct(t6 - t0 - sum(emulated.values()), segments)


async def calibrate(
    info: dict[str, Any], site: SiteConfig, first: int, count: int, pause: float
) -> list[Direct]:
    """``count`` direct runs on the site's files ``first``, ``first + 1``, …"""
    settings = SiteServicesSettings.model_validate(info["services"])
    services = await open_site_services(settings)
    runs: list[Direct] = []
    try:
        for index in range(first, first + count):
            runs.append(await _one(services, site, str(info["registry"]), index))
            await asyncio.sleep(pause)
    finally:
        await services.aclose()
    return runs
