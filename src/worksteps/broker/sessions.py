"""Reading and changing sessions: render, update (accept / reject / cancel), expire.

Every phase change goes through :func:`worksteps.broker.lifecycle.transition` and is written
with a compare-and-set on the phase it was decided from, so a concurrent change makes the
loser's request fail with 409 instead of overwriting. ACCEPT first claims the offer set
(``accepted IS NULL`` → this offer) so exactly one of two racing sibling ACCEPTs wins.
The UPDATE that changes a phase also bumps ``version`` (the document changed) and takes the
session's next event number, so its event joins the log in order (see
:mod:`worksteps.broker.engine.events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import BookingRow, ComponentRow, OfferSetRow, SessionRow
from worksteps.broker.engine.events import Event, append_event, append_events
from worksteps.broker.engine.progress import schedule_preparation, stop_steps
from worksteps.broker.lifecycle import (
    Actor,
    Allowed,
    Refused,
    client_targets,
    holds_capacity,
    transition,
)
from worksteps.broker.settings import EngineSettings
from worksteps.core.database import Database
from worksteps.core.errors import Conflict, FieldError, InvalidInput, NotFound
from worksteps.schema.common import EnumValueUpdate, SessionPhase, Update
from worksteps.schema.isotime import format_instant

__all__ = [
    "SessionView",
    "apply_update",
    "expire_offers",
    "get_component",
    "get_offer_set",
    "get_session",
    "next_expiry",
    "read_session",
    "render_document",
    "render_session",
    "set_phase",
]


def render_document(
    body: dict[str, Any], phase: SessionPhase, modified: datetime
) -> dict[str, Any]:
    """A stored session document with its live phase, modification time and allowed updates."""
    doc = dict(body)
    doc["phase"] = phase.value
    meta = dict(doc.get("meta", {}))
    meta["modified"] = format_instant(modified)
    targets = client_targets(phase)
    if targets:
        meta["options"] = [
            {"kind": "uri:enum-value-option", "path": "phase", "values": [t.value for t in targets]}
        ]
    else:
        meta.pop("options", None)
    doc["meta"] = meta
    return doc


def render_session(row: Any) -> dict[str, Any]:
    return render_document(row.body, SessionPhase(row.phase), row.modified)


async def _session_row(conn: AsyncConnection, uuid: str, owner: str | None) -> Any:
    row = (await conn.execute(select(SessionRow).where(SessionRow.uuid == uuid))).first()
    if row is None or (owner is not None and row.owner not in (None, owner)):
        raise NotFound(f"There is no session {uuid}.", reason="session-not-found")
    return row


@dataclass(frozen=True)
class SessionView:
    """A session's document, with the counters that tell a follower whether it changed:
    ``version`` (the document) and ``events`` (the sequence number of its latest event)."""

    doc: dict[str, Any]
    version: int
    events: int

    @property
    def phase(self) -> SessionPhase:
        return SessionPhase(self.doc["phase"])


async def read_session(
    db: Database, uuid: str, now: datetime, owner: str | None = None
) -> SessionView:
    """Session ``uuid`` as of one read (an offer past its expiry is expired first)."""
    async with db.read() as conn:
        row = await _session_row(conn, uuid, owner)
    if row.phase == SessionPhase.OFFERED and row.expires <= now:
        await expire_offers(db, now)
        async with db.read() as conn:
            row = await _session_row(conn, uuid, owner)
    return SessionView(render_session(row), int(row.version), int(row.events))


async def get_session(
    db: Database, uuid: str, now: datetime, owner: str | None = None
) -> dict[str, Any]:
    return (await read_session(db, uuid, now, owner)).doc


async def get_offer_set(
    db: Database, uuid: str, now: datetime, owner: str | None = None
) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(OfferSetRow).where(OfferSetRow.uuid == uuid))).first()
        if row is None or (owner is not None and row.owner not in (None, owner)):
            raise NotFound(f"There is no offer set {uuid}.", reason="offerset-not-found")
    if row.result == "YES" and row.expires <= now:
        await expire_offers(db, now)
    async with db.read() as conn:
        sessions = {
            r.uuid: r
            for r in await conn.execute(select(SessionRow).where(SessionRow.offerset == uuid))
        }
    doc = dict(row.body)
    doc["expires"] = format_instant(row.expires)
    doc["offers"] = [render_session(sessions[u]) for u in doc.get("offers", []) if u in sessions]
    return doc


async def get_component(
    db: Database, family: str, uuid: str, owner: str | None = None
) -> dict[str, Any]:
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(ComponentRow).where(ComponentRow.uuid == uuid, ComponentRow.family == family)
            )
        ).first()
        if found is None:
            raise NotFound(f"There is no {family} component {uuid}.", reason="component-not-found")
        row = await _session_row(conn, found.session, owner)
    for item in _components(row.body):
        if item.get("meta", {}).get("uuid") == uuid:
            return dict(item)
    raise NotFound(f"There is no {family} component {uuid}.", reason="component-not-found")


def _components(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = [doc.get("executable"), doc.get("compute")]
    found += list((doc.get("compute") or {}).get("volumes") or [])
    found += list(doc.get("storage") or []) + list(doc.get("data") or [])
    return [c for c in found if isinstance(c, dict)]


def _target(change: Update) -> SessionPhase:
    if not isinstance(change, EnumValueUpdate) or change.path.strip("/") != "phase":
        raise InvalidInput(
            "This session accepts only an enum-value update of its phase.",
            [FieldError("path", f"{change.kind} on {change.path!r} is not an option here")],
            reason="unsupported-update",
        )
    try:
        return SessionPhase(change.value.strip().upper())
    except ValueError:
        raise InvalidInput(
            f"{change.value!r} is not a session phase.",
            [FieldError("value", "must be one of " + ", ".join(p.value for p in SessionPhase))],
            reason="unknown-phase",
        ) from None


def _refusal(uuid: str, refused: Refused[SessionPhase]) -> Conflict:
    allowed = ", ".join(p.value for p in refused.allowed) or "none"
    return Conflict(
        f"Session {uuid} cannot move from {refused.source} to {refused.target}: "
        f"{refused.reason}. Allowed now: {allowed}.",
        reason="transition-refused",
        extra={"phase": refused.source.value, "allowed": [p.value for p in refused.allowed]},
    )


async def apply_update(
    db: Database,
    uuid: str,
    change: Update,
    now: datetime,
    owner: str | None = None,
    engine: EngineSettings | None = None,
) -> dict[str, Any]:
    """Apply a client's update to session ``uuid`` and return the session as it left it.

    With an ``engine``, an accepted session gets its preparation steps in the same
    transaction (and is WAITING for them), and a cancelled one has its steps stopped and its
    release made due.
    """
    target = _target(change)
    async with db.read() as conn:
        row = await _session_row(conn, uuid, owner)
    current = SessionPhase(row.phase)
    if current == SessionPhase.OFFERED and row.expires <= now:
        await expire_offers(db, now)
        current = SessionPhase.EXPIRED
    decision = transition(current, target, Actor.CLIENT)
    if isinstance(decision, Refused):
        raise _refusal(uuid, decision)
    if target == SessionPhase.ACCEPTED:
        reached = await _accept(db, row, now, engine)
    else:
        await set_phase(db, uuid, current, target, now, stop=engine is not None)
        reached = target
    return render_document(row.body, reached, now)  # the body itself is not changed here


async def set_phase(
    db: Database,
    uuid: str,
    source: SessionPhase,
    target: SessionPhase,
    now: datetime,
    actor: Actor = Actor.CLIENT,
    stop: bool = False,
) -> None:
    """Compare-and-set the phase; release the booking when the new phase holds none; with
    ``stop``, cancel the session's engine steps and make its release due."""
    decision = transition(source, target, actor)
    if isinstance(decision, Refused):
        raise _refusal(uuid, decision)
    async with db.write() as conn:
        done = (
            await conn.execute(
                update(SessionRow)
                .where(SessionRow.uuid == uuid, SessionRow.phase == source.value)
                .values(_moved(target.value, now))
                .returning(SessionRow.events)
            )
        ).first()
        if done is None:
            raise Conflict(
                f"Session {uuid} changed while the update was applied; try again.",
                reason="concurrent-change",
            )
        change = {"phase": target.value, "from": source.value}
        await append_event(conn, uuid, "phase", change, now, seq=done.events)
        if not holds_capacity(target):
            await conn.execute(
                update(BookingRow).where(BookingRow.session == uuid).values(state="RELEASED")
            )
        if stop:
            await stop_steps(conn, uuid, now)


async def _accept(
    db: Database, row: Any, now: datetime, engine: EngineSettings | None
) -> SessionPhase:
    """Accept offer ``row``, reject its siblings, book it; with an ``engine``, plan its
    preparation and move on to WAITING in the same statement. Returns the phase reached."""
    reached = SessionPhase.ACCEPTED
    if engine is not None:
        assert isinstance(transition(reached, SessionPhase.WAITING, Actor.BROKER), Allowed)
        reached = SessionPhase.WAITING
    changes = 2 if engine is not None else 1  # OFFERED → ACCEPTED (→ WAITING)
    async with db.write() as conn:
        claimed = await conn.execute(
            update(OfferSetRow)
            .where(OfferSetRow.uuid == row.offerset, OfferSetRow.accepted.is_(None))
            .values(accepted=row.uuid)
        )
        if claimed.rowcount != 1:
            raise Conflict(
                f"Another offer of offer set {row.offerset} has already been accepted.",
                reason="offerset-already-accepted",
            )
        done = (
            await conn.execute(
                update(SessionRow)
                .where(
                    SessionRow.uuid == row.uuid,
                    SessionRow.phase == "OFFERED",
                    SessionRow.expires > now,
                )
                .values(_moved(reached.value, now, changes))
                .returning(SessionRow.events)
            )
        ).first()
        if done is None:
            raise Conflict(
                f"Offer {row.uuid} is no longer open (expired or changed).", reason="offer-not-open"
            )
        rejected = list(
            await conn.execute(
                update(SessionRow)
                .where(
                    SessionRow.offerset == row.offerset,
                    SessionRow.uuid != row.uuid,
                    SessionRow.phase == "OFFERED",
                )
                .values(_moved("REJECTED", now))
                .returning(SessionRow.uuid, SessionRow.events)
            )
        )
        if rejected:
            await conn.execute(
                update(BookingRow)
                .where(BookingRow.session.in_([r.uuid for r in rejected]))
                .values(state="RELEASED")
            )
        booking = (
            await conn.execute(
                update(BookingRow)
                .where(BookingRow.session == row.uuid)
                .values(state="BOOKED", hold_expires=None)
                .returning(BookingRow.start, BookingRow.end)
            )
        ).one()
        seq = done.events - changes
        events = [Event(row.uuid, seq + 1, "phase", {"phase": "ACCEPTED", "from": "OFFERED"})]
        if engine is not None:
            events.append(
                Event(row.uuid, seq + 2, "phase", {"phase": "WAITING", "from": "ACCEPTED"})
            )
        for sibling in rejected:
            change = {"phase": "REJECTED", "from": "OFFERED"}
            events.append(Event(sibling.uuid, sibling.events, "phase", change))
        await append_events(conn, events, now)
        if engine is not None:
            # the site's service account does the work; the owner is who may see it
            owner = engine.user
            window = (booking.start, booking.end)
            await schedule_preparation(conn, row.uuid, row.body, owner, engine, now, window)
    return reached


async def expire_offers(db: Database, now: datetime) -> int:
    """Move every lapsed offer to EXPIRED and release its hold; returns how many."""
    async with db.write() as conn:
        lapsed = [
            r.uuid
            for r in await conn.execute(
                select(SessionRow.uuid).where(
                    SessionRow.phase == "OFFERED", SessionRow.expires <= now
                )
            )
        ]
        if not lapsed:
            return 0
        expired = list(
            await conn.execute(
                update(SessionRow)
                .where(SessionRow.uuid.in_(lapsed), SessionRow.phase == "OFFERED")
                .values(_moved("EXPIRED", now))
                .returning(SessionRow.uuid, SessionRow.events)
            )
        )
        await conn.execute(
            update(BookingRow)
            .where(BookingRow.session.in_(lapsed), BookingRow.state == "HELD")
            .values(state="RELEASED")
        )
        for found in expired:
            change = {"phase": "EXPIRED", "from": "OFFERED"}
            await append_event(conn, found.uuid, "phase", change, now, seq=found.events)
    return len(expired)


def _moved(phase: str, now: datetime, changes: int = 1) -> dict[str, Any]:
    """The column values of a move to ``phase`` through ``changes`` phases, each recorded by
    one event (the last one's ``seq`` is returned)."""
    return {
        "phase": phase,
        "modified": now,
        "version": SessionRow.version + 1,
        "events": SessionRow.events + changes,
    }


async def next_expiry(db: Database) -> datetime | None:
    """When the next open offer lapses (``None`` when there is none)."""
    async with db.read() as conn:
        found = await conn.execute(
            select(SessionRow.expires)
            .where(SessionRow.phase == "OFFERED")
            .order_by(SessionRow.expires)
            .limit(1)
        )
        first = found.first()
    return first.expires if first else None
