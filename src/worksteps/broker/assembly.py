"""Turn a planned slot into an offer: a scheduled execution session with its own components.

Each offer is a full copy of the request with fresh UUIDs, the granted resources written as
``min == max`` (what the site commits to) and the schedule of every phase. References between
components (data→storage, storage→data, mount→resource) are rewritten from names to the
offer's own UUIDs so they stay unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from worksteps.broker.intake import Intake
from worksteps.broker.planner import Slot
from worksteps.broker.settings import BrokerSettings
from worksteps.schema.common import (
    ComponentPhase,
    Metadata,
    MinMax,
    Schedule,
    ScheduleInstant,
    ScheduleInterval,
    SessionPhase,
)
from worksteps.schema.documents import ScheduledExecutionSession
from worksteps.schema.isotime import Interval

__all__ = ["Offer", "build_offer"]


@dataclass
class Offer:
    """An offer ready to store: its document, its components and the slot it holds."""

    uuid: str
    document: dict[str, Any]
    components: list[tuple[str, str]]  # (uuid, family)
    slot: Slot


def _meta(meta: Metadata | None, uuid: UUID, url: str, now: datetime) -> Metadata:
    base = meta.model_copy() if meta else Metadata()
    base.uuid, base.url, base.created = uuid, url, now
    base.messages = base.messages or None
    return base


def build_offer(
    intake: Intake,
    slot: Slot,
    index: int,
    *,
    base_url: str,
    settings: BrokerSettings,
    now: datetime,
    expires: datetime,
) -> Offer:
    """The session document offering ``slot`` for ``intake``'s request."""
    request = intake.request.model_copy(deep=True)
    components: list[tuple[str, str]] = []
    prep_start = max(now, slot.start - intake.preparation)
    schedule = Schedule(
        preparing=ScheduleInstant(start=prep_start, duration=slot.start - prep_start),
        available=ScheduleInterval(start=Interval(slot.start, slot.start), duration=slot.duration),
        releasing=ScheduleInstant(start=slot.end, duration=settings.release),
    )
    uuids: dict[str, str] = {}

    def register(item: Any, family: str) -> None:
        uuid = uuid4()
        name = item.meta.name if item.meta and item.meta.name else None
        if name:
            uuids[name] = str(uuid)
        item.meta = _meta(item.meta, uuid, f"{base_url}{family}/{uuid}", now)
        if hasattr(item, "phase"):
            item.phase = ComponentPhase.INITIALIZING
            item.schedule = schedule
        components.append((str(uuid), family))

    assert request.executable is not None
    assert request.compute is not None
    register(request.executable, "executables")
    register(request.compute, "compute")
    for volume in request.compute.volumes or []:
        register(volume, "volumes")
    for store in request.storage or []:
        register(store, "storage")
    for data in request.data or []:
        register(data, "data")

    compute = request.compute
    compute.cores = MinMax(min=slot.resources.cores, max=slot.resources.cores)
    compute.memory = MinMax(min=slot.resources.memory, max=slot.resources.memory)
    _grant_storage(request.storage or [], slot.resources.storage)
    for volume in compute.volumes or []:
        volume.resource = uuids.get(volume.resource or "", volume.resource)
    for store in request.storage or []:
        store.data = [uuids.get(ref, ref) for ref in store.data or []] or None
    for data in request.data or []:
        data.storage = uuids.get(data.storage or "", data.storage)

    uuid = uuid4()
    name = (intake.request.meta.name if intake.request.meta else None) or "request"
    session = ScheduledExecutionSession(
        meta=Metadata(
            uuid=uuid,
            name=f"{name}-offer-{index}",
            url=f"{base_url}sessions/{uuid}",
            created=now,
            messages=list(intake.notes) or None,
        ),
        phase=SessionPhase.OFFERED,
        expires=expires,
        executable=request.executable,
        compute=compute,
        storage=request.storage,
        data=request.data,
        schedule=schedule,
        costs=request.costs,
        metrics=request.metrics,
    )
    document = session.model_dump(mode="json", exclude_none=True)
    return Offer(str(uuid), document, components, slot)


def _grant_storage(stores: list[Any], granted: int) -> None:
    """Share the granted storage: every store its minimum, the rest in order up to each max."""
    spare = granted - sum(s.size.min or 0 for s in stores if s.size)
    for store in stores:
        low = store.size.min or 0 if store.size else 0
        high = store.size.max or low if store.size else low
        extra = max(0, min(spare, high - low))
        spare -= extra
        store.size = MinMax(min=low + extra, max=low + extra)
