"""What an execution needs to know about one broker offer, read from the broker's document.

An offer's estimated ready time is its start (``schedule.preparing.start``, else the start of
``schedule.available``) plus its preparing duration. Data locality comes from the offer's
``urn:data-locality`` message (``values.data``: local|remote, ``values.image``: cached|remote);
brokers that do not send one leave it unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from worksteps.schema.common import MinMax
from worksteps.schema.documents import ScheduledExecutionSession, SimpleExecutionSession
from worksteps.schema.isotime import format_duration, format_instant

__all__ = ["LOCALITY_KIND", "Offer", "read_offer"]

LOCALITY_KIND = "urn:data-locality"


@dataclass(frozen=True)
class Offer:
    """One offer of one broker, in the terms the ranking and the user need."""

    site: str
    uuid: str
    session: str  # the broker's URL of the offer (its session)
    start: datetime | None
    window: tuple[datetime, datetime] | None  # when the session may become available
    preparing: timedelta
    duration: timedelta | None
    expires: datetime | None
    cores: int | None = None
    memory: int | None = None
    data: str | None = None  # local | remote | None (unknown)
    image: str | None = None  # cached | remote | None (unknown)
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> datetime | None:
        """When the session is estimated to be ready: start + preparing."""
        return None if self.start is None else self.start + self.preparing

    def as_dict(self) -> dict[str, Any]:
        """What the user is shown of the offer: the same dict at every call (read it, do not
        change it), worked out once, which the fan-out does while other brokers answer."""
        return self._summary

    @cached_property
    def _summary(self) -> dict[str, Any]:
        def instant(value: datetime | None) -> str | None:
            return format_instant(value) if value is not None else None

        return {
            "site": self.site,
            "offer": self.uuid,
            "session": self.session,
            "start": instant(self.start),
            "window": (
                {"earliest": instant(self.window[0]), "latest": instant(self.window[1])}
                if self.window
                else None
            ),
            "preparing": format_duration(self.preparing),
            "duration": format_duration(self.duration) if self.duration is not None else None,
            "resources": {"cores": self.cores, "memory": self.memory},
            "locality": {"data": self.data, "image": self.image},
            "ready": instant(self.ready),
            "expires": instant(self.expires),
            "notes": list(self.notes),
        }


def _granted(value: MinMax | None) -> int | None:
    """What an offer grants: its ``max`` (offers grant min == max), else its ``min``."""
    if value is None:
        return None
    return value.max if value.max is not None else value.min


def read_offer(
    site: str, broker_url: str, doc: SimpleExecutionSession | ScheduledExecutionSession
) -> Offer | None:
    """The :class:`Offer` of a broker's offer document; None when it has no uuid."""
    meta = doc.meta
    if meta is None or meta.uuid is None:
        return None
    uuid = str(meta.uuid)
    schedule = doc.schedule if isinstance(doc, ScheduledExecutionSession) else None
    start = window = duration = None
    preparing = timedelta(0)
    if schedule is not None:
        if schedule.available is not None:
            if schedule.available.start is not None:
                window = (schedule.available.start.start, schedule.available.start.end)
            duration = schedule.available.duration
        if schedule.preparing is not None:
            start = schedule.preparing.start
            preparing = schedule.preparing.duration or timedelta(0)
        if start is None and window is not None:
            start = window[0]
    data = image = None
    notes: list[str] = []
    for message in meta.messages or []:
        if message.kind == LOCALITY_KIND and message.values:
            data = message.values.get("data")
            image = message.values.get("image")
        elif message.message:
            notes.append(message.message)
    compute = doc.compute
    cores = _granted(compute.cores if compute is not None else None)
    memory = _granted(compute.memory if compute is not None else None)
    return Offer(
        site=site,
        uuid=uuid,
        session=meta.url or f"{broker_url}/sessions/{uuid}",
        start=start,
        window=window,
        preparing=preparing,
        duration=duration,
        expires=doc.expires,
        cores=cores,
        memory=memory,
        data=data if data in ("local", "remote") else None,
        image=image if image in ("cached", "remote") else None,
        notes=notes,
    )
