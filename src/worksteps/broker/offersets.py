"""Making offer sets: plan against the calendar and store the offers as holds, atomically.

Planning takes the site's row lock first (``UPDATE sites``), so two requests — in this process
or in another broker replica on the same PostgreSQL — never plan against the same free
capacity. Only bookings that overlap the window (plus the duration) are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.assembly import Offer, build_offer
from worksteps.broker.db.tables import BookingRow, ComponentRow, OfferSetRow, SessionRow, SiteRow
from worksteps.broker.intake import Intake
from worksteps.broker.planner import Calendar, Resources, explain_shortfall, plan_offers
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.schema import kinds
from worksteps.schema.common import Message, MessageLevel

__all__ = ["CreatedOfferSet", "create_offer_set", "load_calendar", "lock_site"]


@dataclass
class CreatedOfferSet:
    uuid: str
    result: str
    offers: list[Offer]


async def lock_site(conn: AsyncConnection, site: str) -> None:
    """Serialise planning for ``site`` until the transaction ends."""
    done = await conn.execute(
        update(SiteRow).where(SiteRow.name == site).values(version=SiteRow.version + 1)
    )
    if done.rowcount == 0:
        await conn.execute(insert(SiteRow).values(name=site, version=1))


async def load_calendar(
    conn: AsyncConnection,
    settings: BrokerSettings,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Calendar:
    """The calendar of bookings and unexpired holds of the site overlapping ``[start, end)``."""
    b = BookingRow
    rows = (
        await conn.execute(
            select(b.start, b.end, b.cores, b.memory, b.gpus, b.storage).where(
                b.site == settings.site,
                b.end > start,
                b.start < end,
                # no booking is longer than the site books, so this bound keeps the scan to
                # the window instead of every future booking
                b.start > start - settings.max_duration,
                or_(b.state == "BOOKED", and_(b.state == "HELD", b.hold_expires > now)),
            )
        )
    ).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    starts, ends, *amounts = (list(c) for c in columns)
    return Calendar.from_columns(_capacity(settings), starts, ends, amounts)


def _capacity(settings: BrokerSettings) -> Resources:
    c = settings.capacity
    return Resources(c.cores, c.memory, c.gpus, c.storage)


def _messages(texts: list[str], kind: str) -> list[Message]:
    return [Message(kind=kind, level=MessageLevel.ERROR, message=t, template=t) for t in texts]


async def create_offer_set(
    db: Database,
    settings: BrokerSettings,
    intake: Intake,
    *,
    base_url: str,
    now: datetime,
    owner: str | None = None,
    max_offers: int | None = None,
) -> tuple[CreatedOfferSet, dict[str, Any]]:
    """Plan, store and return the offer set (and its stored document without offers)."""
    expires = now + settings.offer_ttl
    uuid = str(uuid4())
    offers: list[Offer] = []
    messages = list(intake.refusals)
    async with db.write() as conn:
        if not messages:
            await lock_site(conn, settings.site)
            end = intake.window_end + intake.duration
            calendar = await load_calendar(conn, settings, intake.window_start, end, now)
            slots = plan_offers(
                calendar,
                intake.demand,
                intake.window_start,
                intake.window_end,
                intake.duration,
                max_offers or settings.max_offers,
            )
            if not slots:
                messages = await _shortfall(conn, settings, intake, now)
            offers = [
                build_offer(
                    intake, slot, i, base_url=base_url, settings=settings, now=now, expires=expires
                )
                for i, slot in enumerate(slots)
            ]
        result = "YES" if offers else "NO"
        name = (intake.request.meta.name if intake.request.meta else None) or "request"
        body: dict[str, Any] = {
            "kind": kinds.OFFERSET,
            "meta": {"uuid": uuid, "name": name, "url": f"{base_url}offersets/{uuid}"},
            "result": result,
            "offers": [o.uuid for o in offers],
        }
        if messages:
            body["meta"]["messages"] = [
                m.model_dump(mode="json", exclude_none=True) for m in messages
            ]
        await conn.execute(
            insert(OfferSetRow).values(
                uuid=uuid,
                site=settings.site,
                owner=owner,
                created=now,
                expires=expires,
                result=result,
                accepted=None,
                body=body,
            )
        )
        if offers:
            await _store_offers(conn, settings.site, owner, uuid, offers, now, expires)
    return CreatedOfferSet(uuid, result, offers), body


async def _store_offers(
    conn: AsyncConnection,
    site: str,
    owner: str | None,
    offerset: str,
    offers: list[Offer],
    now: datetime,
    expires: datetime,
) -> None:
    await conn.execute(
        insert(SessionRow),
        [
            {
                "uuid": o.uuid,
                "offerset": offerset,
                "site": site,
                "owner": owner,
                "phase": "OFFERED",
                "version": 0,
                "created": now,
                "modified": now,
                "expires": expires,
                "body": o.document,
            }
            for o in offers
        ],
    )
    await conn.execute(
        insert(ComponentRow),
        [
            {"uuid": c, "session": o.uuid, "family": family}
            for o in offers
            for c, family in o.components
        ],
    )
    await conn.execute(
        insert(BookingRow),
        [
            {
                "session": o.uuid,
                "site": site,
                "state": "HELD",
                "start": o.slot.start,
                "end": o.slot.end,
                "hold_expires": expires,
                **dict(o.slot.resources.items()),
            }
            for o in offers
        ],
    )


async def _shortfall(
    conn: AsyncConnection, settings: BrokerSettings, intake: Intake, now: datetime
) -> list[Message]:
    horizon = max(intake.window_end, now + settings.horizon)
    calendar = await load_calendar(
        conn, settings, intake.window_start, horizon + intake.duration, now
    )
    short = explain_shortfall(
        calendar, intake.demand, intake.window_start, intake.window_end, intake.duration, horizon
    )
    return _messages(short.messages(), "urn:resource-limit")
