"""Honest preparation estimates: how long until an offered session could be available.

Built from the site's actual state and its own history, step by step as the engine will run
them: data with a replica at the site's storage element only needs copying into the user's
area; other data must first be replicated (size over the transfer rate); an image already in
the site's registry costs nothing, another costs its layers over the pull rate; the session
start is what recent launches took. Rates are the site's recorded throughput of recent steps
of the same kind when it has any, else the configured ones. The critical path is the longest
preparation chain, then the session start.

Site answers are cached for ``cache_seconds`` so that offer requests stay fast, and a site
service that does not answer never blocks an offer: its step is estimated from configuration
and the estimate says so.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import StepRow
from worksteps.broker.settings import BrokerSettings
from worksteps.schema.common import Message, MessageLevel
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.resources import (
    DockerContainer,
    JupyterNotebook,
    RucioDataResource,
    SingularityContainer,
    SkaoDataResource,
)
from worksteps.site.errors import SiteError
from worksteps.site.images import ImageRef
from worksteps.site.services import SiteServices
from worksteps.site.staging import DID

__all__ = ["LOCALITY_KIND", "Estimate", "Estimator", "locality_message"]

LOCALITY_KIND = "urn:data-locality"


@dataclass
class Estimate:
    """The time to prepare, and what it is made of (for the offer's messages)."""

    total: timedelta
    notes: list[str] = field(default_factory=list)
    local_data: bool = True
    image_cached: bool = True


def locality_message(estimate: Estimate) -> Message:
    """The offer's machine-readable locality, so that a client can rank offers by it:
    ``values.data`` is ``local`` when every dataset has a replica at the site's storage
    element (else ``remote``), ``values.image`` is ``cached`` or ``remote``."""
    data = "local" if estimate.local_data else "remote"
    image = "cached" if estimate.image_cached else "remote"
    text = f"data {data}, image {image}"
    return Message(
        kind=LOCALITY_KIND,
        level=MessageLevel.INFO,
        template="data {data}, image {image}",
        values={"data": data, "image": image},
        message=text,
    )


@dataclass
class _History:
    rates: dict[str, float]  # kind -> bytes/s
    durations: dict[str, float]  # kind -> seconds


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=round(value, 3))


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


class Estimator:
    """Estimates for one site; keeps a short cache of what the site services said."""

    def __init__(self, settings: BrokerSettings, services: SiteServices | None) -> None:
        self.settings = settings
        self.cfg = settings.estimates
        self.services = services
        self.rse = settings.services.rucio.rse if settings.services else None
        self._cache: dict[str, tuple[float, Any]] = {}

    async def _cached(self, key: str, fetch: Any) -> Any:
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self.cfg.cache_seconds:
            return hit[1]
        value = await fetch()
        self._cache[key] = (time.monotonic(), value)
        return value

    async def history(self, conn: AsyncConnection) -> _History:
        """Throughput and durations of the site's recent finished steps, per kind."""
        rates: dict[str, float] = {}
        durations: dict[str, float] = {}
        if not self.cfg.history:
            return _History(rates, durations)
        for kind in ("stage", "place", "image", "launch"):
            rows = await conn.execute(
                select(StepRow.started, StepRow.finished, StepRow.bytes_total)
                .where(
                    StepRow.kind == kind,
                    StepRow.state == "DONE",
                    StepRow.started.is_not(None),
                    StepRow.finished.is_not(None),
                )
                .order_by(StepRow.finished.desc())
                .limit(self.cfg.history)
            )
            spans = [
                (r.finished - r.started).total_seconds() for r in rows if r.finished > r.started
            ]
            sized = [
                (r.bytes_total, (r.finished - r.started).total_seconds())
                for r in rows
                if r.bytes_total and r.finished > r.started
            ]
            if spans:
                durations[kind] = statistics.median(spans)
            if sized:
                rates[kind] = statistics.median(b / s for b, s in sized)
        return _History(rates, durations)

    async def estimate(self, request: ExecutionRequest, history: _History) -> Estimate:
        if self.services is None:
            return Estimate(self.settings.preparation, ["preparation time as configured"])
        results = await asyncio.gather(
            *(self._data(d, history) for d in request.data or []),
            self._image(request, history),
        )
        chains = [r[0] for r in results]
        notes = [r[1] for r in results]
        local = all(r[2] for r in results[:-1])
        start = history.durations.get("launch", self.cfg.session_start.total_seconds())
        notes.append(
            f"session start ≈ {start:.1f} s"
            + (" (recent launches)" if "launch" in history.durations else "")
        )
        total = max(chains, default=0.0) + start
        return Estimate(_seconds(total), notes, local, results[-1][2])

    async def _data(self, data: Any, history: _History) -> tuple[float, str, bool]:
        name = data.meta.name if data.meta and data.meta.name else "data"
        copy_rate = history.rates.get("place", self.cfg.copy_rate)
        did = None
        if isinstance(data, RucioDataResource) and data.rucio:
            did = DID(str(data.rucio.scope), str(data.rucio.object))
        elif isinstance(data, SkaoDataResource) and data.skao:
            did = DID(str(data.skao.namespace), str(data.skao.objectname))
        if did is None:
            size = _declared_size(data)
            if size is None:
                return self.cfg.unknown_data.total_seconds(), f"{name}: size unknown", True
            return size / copy_rate, f"{name}: {_size(size)} to copy", True
        assert self.services is not None
        services = self.services
        try:
            replicas = await self._cached(f"did:{did}", lambda: services.staging.replicas(did))
        except SiteError as exc:
            return (
                self.cfg.unknown_data.total_seconds(),
                f"{name}: replicas unknown ({exc.message})",
                False,
            )
        size = max((r.bytes for r in replicas), default=0)
        if any(r.rse == self.rse for r in replicas):
            return size / copy_rate, f"{name}: {_size(size)} already at {self.rse}", True
        rate = history.rates.get("stage", self.cfg.transfer_rate)
        where = ", ".join(sorted({r.rse for r in replicas})) or "nowhere"
        return (
            size / rate + size / copy_rate,
            f"{name}: {_size(size)} to replicate from {where}",
            False,
        )

    async def _image(self, request: ExecutionRequest, history: _History) -> tuple[float, str, bool]:
        exe = request.executable
        image = self.settings.engine.notebook_image
        if isinstance(exe, DockerContainer) and exe.image and exe.image.locations:
            image = exe.image.locations[0]
        elif isinstance(exe, SingularityContainer) and exe.location:
            image = exe.location
        elif not isinstance(exe, JupyterNotebook):
            return 0.0, "no image", True
        assert self.services is not None
        services = self.services
        try:
            ref = ImageRef.parse(image)
            info = await self._cached(f"image:{image}", lambda: services.images.inspect(ref))
        except (SiteError, ValueError) as exc:
            return self.cfg.unknown_data.total_seconds(), f"image {image}: unknown ({exc})", False
        if info.present:
            return 0.0, f"image {image} cached at the site", True
        size = info.layers_size or info.size or 0
        rate = history.rates.get("image", self.cfg.pull_rate)
        return size / rate, f"image {image}: {_size(size)} to replicate", False


def _declared_size(data: Any) -> int | None:
    ivoa = getattr(data, "ivoa", None)
    if ivoa is not None and ivoa.datalink is not None:
        length = ivoa.datalink.content_length
        return int(length) if length is not None else None
    return None
