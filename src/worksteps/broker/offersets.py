"""Making offer sets: plan against the calendar and store the offers as holds, atomically.

One :class:`OfferSetMaker` per broker process keeps the site's calendar in memory (a
:class:`~worksteps.broker.planner.ledger.Ledger`) and, for each request, asks the store
(:mod:`worksteps.broker.db.holds`) for the bookings changed since it last looked, plans on the
updated calendar, and has the store keep the offers only if no other hold of the site was
stored since that read. So two requests, in this process or in another broker replica on the
same database, never plan against the same free capacity, and a request costs the same on a
calendar of 1k or 100k bookings. A refusal is explained from the same calendar, over the
whole horizon.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from worksteps.broker.assembly import Offer, OfferTemplate
from worksteps.broker.db.holds import BookingChanges, HoldStore, NewHold, NewOfferSet
from worksteps.broker.intake import Intake
from worksteps.broker.planner import Resources, explain_shortfall, plan_offers
from worksteps.broker.planner.ledger import Ledger
from worksteps.broker.settings import BrokerSettings
from worksteps.schema import kinds
from worksteps.schema.common import Message, MessageLevel

__all__ = ["CreatedOfferSet", "OfferSetMaker"]


@dataclass
class CreatedOfferSet:
    uuid: str
    result: str
    offers: list[Offer]


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _hold(offer: Offer) -> NewHold:
    slot = offer.slot
    return NewHold(
        offer.uuid, _text(offer.document), slot.start, slot.end, slot.resources.as_tuple()
    )


def _body(uuid: str, name: str, base_url: str, result: str) -> dict[str, Any]:
    meta = {"uuid": uuid, "name": name, "url": f"{base_url}offersets/{uuid}"}
    return {"kind": kinds.OFFERSET, "meta": meta, "result": result, "offers": []}


def _messages(texts: list[str], kind: str) -> list[Message]:
    return [Message(kind=kind, level=MessageLevel.ERROR, message=t, template=t) for t in texts]


class OfferSetMaker:
    """Makes and stores the offer sets of one site, on a calendar kept in memory."""

    def __init__(self, store: HoldStore, settings: BrokerSettings) -> None:
        c = settings.capacity
        self.store = store
        self.settings = settings
        self._ledger = Ledger(Resources(c.cores, c.memory, c.gpus, c.storage))

    async def create(
        self,
        intake: Intake,
        *,
        base_url: str,
        now: datetime,
        owner: str | None = None,
        max_offers: int | None = None,
    ) -> tuple[CreatedOfferSet, dict[str, Any]]:
        """Plan, store and return the offer set (and its stored document without offers)."""
        settings = self.settings
        expires = now + settings.offer_ttl
        uuid = str(uuid4())
        name = (intake.request.meta.name if intake.request.meta else None) or "request"
        made: list[Offer] = []
        body: dict[str, Any] = {}

        def decide(changes: BookingChanges) -> NewOfferSet:
            self._take_in(changes, now)
            offers, messages = self._plan(intake, max_offers, now, expires, base_url)
            made[:] = offers
            body.clear()
            body.update(_body(uuid, name, base_url, "YES" if offers else "NO"))
            body["offers"] = [o.uuid for o in offers]
            if messages:
                body["meta"]["messages"] = [
                    m.model_dump(mode="json", exclude_none=True) for m in messages
                ]
            return NewOfferSet(
                uuid,
                settings.site,
                owner,
                now,
                expires,
                body["result"],
                _text(body),
                [_hold(o) for o in offers],
                [(c, o.uuid, family) for o in offers for c, family in o.components],
            )

        await self.store.place(settings.site, lambda: self._ledger.watermark, now, decide)
        return CreatedOfferSet(uuid, body["result"], list(made)), body

    async def close(self) -> None:
        await self.store.close()

    def _take_in(self, changes: BookingChanges, now: datetime) -> None:
        """Bring the ledger up to date; any failure leaves it empty, to be loaded again."""
        ledger = self._ledger
        try:
            if changes.complete:
                ledger.load(changes.rows, now)
                # The ledger lives as long as the process: keep the cyclic collector from going
                # through its objects (10^5-10^6) in every full collection, which stalled all
                # requests for 30-150 ms. Freed by reference counting, they are freed as usual.
                gc.freeze()
            else:
                ledger.apply(changes.rows, now)
            ledger.settle(now)
        except Exception:
            ledger.reset()
            raise
        ledger.watermark = changes.upto

    def _plan(
        self,
        intake: Intake,
        max_offers: int | None,
        now: datetime,
        expires: datetime,
        base_url: str,
    ) -> tuple[list[Offer], list[Message]]:
        """The offers for ``intake``, or the messages that say why there are none."""
        if intake.refusals:
            return [], intake.refusals
        settings = self.settings
        end = intake.window_end + intake.duration
        slots = plan_offers(
            self._ledger.window(intake.window_start, end),
            intake.demand,
            intake.window_start,
            intake.window_end,
            intake.duration,
            max_offers or settings.max_offers,
        )
        if not slots:
            horizon = max(intake.window_end, now + settings.horizon)
            short = explain_shortfall(
                self._ledger.window(intake.window_start, horizon + intake.duration),
                intake.demand,
                intake.window_start,
                intake.window_end,
                intake.duration,
                horizon,
            )
            return [], _messages(short.messages(), "urn:resource-limit")
        template = OfferTemplate(
            intake, base_url=base_url, settings=settings, now=now, expires=expires
        )
        return [template.offer(slot, i) for i, slot in enumerate(slots)], []
