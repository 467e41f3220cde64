"""Turn a planned slot into an offer: a scheduled execution session with its own components.

Each offer is a copy of the request with fresh UUIDs, the granted resources written as
``min == max`` (what the site commits to) and the schedule of every phase. References between
components (data→storage, storage→data, mount→resource) are rewritten from names to the
offer's own UUIDs so they stay unambiguous.

The request is validated once and dumped once (:class:`OfferTemplate`); each offer is then
put together from that JSON-like data, in the field order and formats of
:class:`~worksteps.schema.documents.ScheduledExecutionSession` (its own dump of the document is
the same document), without copying or validating models per offer. Parts an offer does not
change are shared with the template and the other offers: treat the documents as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from worksteps.broker.intake import Intake
from worksteps.broker.planner import Slot
from worksteps.broker.settings import BrokerSettings
from worksteps.schema import kinds
from worksteps.schema.common import ComponentPhase, SessionPhase
from worksteps.schema.isotime import format_duration, format_instant

__all__ = ["Offer", "OfferTemplate"]

Doc = dict[str, Any]

# The fields of every component before its own (LifecycleComponent's order).
_HEAD = ("costs", "metrics")


@dataclass
class Offer:
    """An offer ready to store: its document, its components and the slot it holds."""

    uuid: str
    document: Doc
    components: list[tuple[str, str]]  # (uuid, family)
    slot: Slot


class OfferTemplate:
    """What every offer for one request shares, prepared once per request."""

    def __init__(
        self,
        intake: Intake,
        *,
        base_url: str,
        settings: BrokerSettings,
        now: datetime,
        expires: datetime,
    ) -> None:
        request = intake.request
        self._request: Doc = request.model_dump(mode="json", exclude_none=True)
        self._name = (request.meta.name if request.meta else None) or "request"
        self._notes = [m.model_dump(mode="json", exclude_none=True) for m in intake.notes]
        self.base_url = base_url
        self.now = now
        self.created = format_instant(now)
        self.expires = format_instant(expires)
        self.preparation = intake.preparation
        self.release = format_duration(settings.release)

    def offer(self, slot: Slot, index: int) -> Offer:
        """The session document offering ``slot``; ``index`` numbers it in its offer set."""
        build = _OfferBuild(self, slot)
        request = self._request
        executable = build.component(request["executable"], "executables")
        compute = build.component(request["compute"], "compute")
        if "volumes" in compute:
            compute["volumes"] = [build.component(v, "volumes") for v in compute["volumes"]]
        stores = [build.component(s, "storage") for s in request.get("storage", ())]
        data = [build.component(d, "data") for d in request.get("data", ())]

        granted = slot.resources
        compute["cores"] = {"min": granted.cores, "max": granted.cores}
        compute["memory"] = {"min": granted.memory, "max": granted.memory}
        _grant_storage(stores, granted.storage)
        build.link(compute.get("volumes", ()), stores, data)

        uuid = str(uuid4())
        meta: Doc = {
            "uuid": uuid,
            "name": f"{self._name}-offer-{index}",
            "url": f"{self.base_url}sessions/{uuid}",
            "created": self.created,
        }
        if self._notes:
            meta["messages"] = self._notes
        session: Doc = {"kind": kinds.SESSION_SCHEDULED, "meta": meta}
        for key in _HEAD:
            if key in request:
                session[key] = request[key]
        session["phase"] = SessionPhase.OFFERED.value
        session["expires"] = self.expires
        session["executable"] = executable
        session["compute"] = compute
        if "storage" in request:
            session["storage"] = stores
        if "data" in request:
            session["data"] = data
        session["schedule"] = build.schedule
        return Offer(uuid, session, build.components, slot)


class _OfferBuild:
    """The state of one offer while its components are copied: their UUIDs by name."""

    def __init__(self, template: OfferTemplate, slot: Slot) -> None:
        self.template = template
        self.uuids: dict[str, str] = {}
        self.components: list[tuple[str, str]] = []
        prep_start = max(template.now, slot.start - template.preparation)
        self.schedule: Doc = {
            "preparing": {
                "start": format_instant(prep_start),
                "duration": format_duration(slot.start - prep_start),
            },
            "available": {
                "start": f"{format_instant(slot.start)}/PT0S",
                "duration": format_duration(slot.duration),
            },
            "releasing": {"start": format_instant(slot.end), "duration": template.release},
        }

    def component(self, item: Doc, family: str) -> Doc:
        """A copy of ``item`` with its own UUID, URL, creation time, phase and schedule."""
        uuid = str(uuid4())
        given: Doc = item.get("meta", {})
        name = given.get("name")
        if name:
            self.uuids[name] = uuid
        meta: Doc = {"uuid": uuid}
        if "name" in given:
            meta["name"] = name
        meta["url"] = f"{self.template.base_url}{family}/{uuid}"
        if "description" in given:
            meta["description"] = given["description"]
        meta["created"] = self.template.created
        if "modified" in given:
            meta["modified"] = given["modified"]
        if given.get("messages"):
            meta["messages"] = given["messages"]
        if "options" in given:
            meta["options"] = given["options"]
        copy: Doc = {"kind": item["kind"], "meta": meta}
        for key in _HEAD:
            if key in item:
                copy[key] = item[key]
        copy["phase"] = ComponentPhase.INITIALIZING.value
        copy["schedule"] = self.schedule
        for key, value in item.items():
            if key not in copy:
                copy[key] = value
        self.components.append((uuid, family))
        return copy

    def link(self, volumes: list[Doc], stores: list[Doc], data: list[Doc]) -> None:
        """Rewrite references by name into references by this offer's UUIDs."""
        uuids = self.uuids
        for volume in volumes:
            if "resource" in volume:
                volume["resource"] = uuids.get(volume["resource"], volume["resource"])
        for store in stores:
            refs = [uuids.get(ref, ref) for ref in store.get("data", ())]
            if refs:
                store["data"] = refs
            else:
                store.pop("data", None)
        for item in data:
            if "storage" in item:
                item["storage"] = uuids.get(item["storage"], item["storage"])


def _grant_storage(stores: list[Doc], granted: int) -> None:
    """Share the granted storage: every store its minimum, the rest in order up to each max."""
    sizes = [store.get("size") or {} for store in stores]
    spare = granted - sum(size.get("min") or 0 for size in sizes)
    for store, size in zip(stores, sizes, strict=True):
        low = size.get("min") or 0
        high = size.get("max") or low
        extra = max(0, min(spare, high - low))
        spare -= extra
        store["size"] = {"min": low + extra, "max": low + extra}
