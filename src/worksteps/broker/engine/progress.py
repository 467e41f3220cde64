"""What step results mean for a session: its phase, connectors, booking and events.

Only this module moves sessions on the broker's account; every move goes through
:func:`worksteps.broker.lifecycle.transition` and is appended to the event log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import BookingRow, SessionRow, StepRow
from worksteps.broker.engine.events import append_event
from worksteps.broker.engine.plan import plan_steps
from worksteps.broker.lifecycle import Actor, Allowed, SessionPhase, transition
from worksteps.broker.settings import EngineSettings
from worksteps.schema.isotime import format_instant

__all__ = [
    "NEVER",
    "move_session",
    "schedule_preparation",
    "stop_steps",
    "wake_dependents",
]

NEVER = datetime(9999, 1, 1, tzinfo=UTC)
_OPEN = ("PENDING", "SUBMITTING", "SUBMITTED")
_INTERACTIVE_KINDS = ("notebook", "carta", "desktop", "contributed", "firefly")


async def move_session(
    conn: AsyncConnection,
    uuid: str,
    target: SessionPhase,
    now: datetime,
    message: str | None = None,
    changes: dict[str, Any] | None = None,
) -> bool:
    """Move ``uuid`` to ``target`` if the table allows it from where it is; record the event."""
    row = (await conn.execute(select(SessionRow).where(SessionRow.uuid == uuid))).first()
    if row is None:
        return False
    source = SessionPhase(row.phase)
    if not isinstance(transition(source, target, Actor.BROKER), Allowed):
        return False
    body = dict(row.body)
    body.update(changes or {})
    if message:
        meta = dict(body.get("meta") or {})
        meta["messages"] = [
            *(meta.get("messages") or []),
            {
                "kind": "urn:session-phase",
                "level": "ERROR" if target == "FAILED" else "INFO",
                "time": format_instant(now),
                "message": message,
            },
        ]
        body["meta"] = meta
    done = await conn.execute(
        update(SessionRow)
        .where(SessionRow.uuid == uuid, SessionRow.phase == source.value)
        .values(phase=target.value, modified=now, version=SessionRow.version + 1, body=body)
    )
    if done.rowcount != 1:
        return False
    event: dict[str, Any] = {"phase": target.value, "from": source.value}
    if message:
        event["message"] = message
    await append_event(conn, uuid, "phase", event, now)
    return True


async def schedule_preparation(
    conn: AsyncConnection,
    uuid: str,
    doc: dict[str, Any],
    user: str,
    engine: EngineSettings,
    now: datetime,
) -> None:
    """Create the steps of an accepted session and put it in WAITING until they start."""
    booking = (await conn.execute(select(BookingRow).where(BookingRow.session == uuid))).first()
    assert booking is not None
    prepare_at = booking.start - _preparation_lead(doc)
    first = max(now, prepare_at)
    rows = []
    for step in plan_steps(uuid, doc, user, engine):
        rows.append(
            {
                "id": f"{uuid}:{step.key}",
                "session": uuid,
                "key": step.key,
                "kind": step.kind,
                "state": "PENDING",
                "after": step.after,
                "params": step.params,
                "result": None,
                "ref": None,
                "failures": 0,
                "polls": 0,
                "interval": 0.0,
                "next_at": NEVER if step.after else first,
                "lease_until": None,
            }
        )
    rows.append(
        {
            "id": f"{uuid}:release",
            "session": uuid,
            "key": "release",
            "kind": "release",
            "state": "PENDING",
            "after": [],
            "params": {},
            "result": None,
            "ref": None,
            "failures": 0,
            "polls": 0,
            "interval": 0.0,
            "next_at": booking.end,
            "lease_until": None,
        }
    )
    await conn.execute(insert(StepRow), rows)
    await move_session(conn, uuid, SessionPhase.WAITING, now)


def _preparation_lead(doc: dict[str, Any]) -> timedelta:
    preparing = (doc.get("schedule") or {}).get("preparing") or {}
    duration = preparing.get("duration")
    if not duration:
        return timedelta(0)
    from worksteps.schema.isotime import parse_duration

    return parse_duration(str(duration))


async def wake_dependents(conn: AsyncConnection, session: str, now: datetime) -> None:
    """Make due every pending step whose inputs are all done."""
    rows = list(
        await conn.execute(
            select(StepRow.key, StepRow.state, StepRow.after).where(StepRow.session == session)
        )
    )
    done = {r.key for r in rows if r.state == "DONE"}
    ready = [r.key for r in rows if r.state == "PENDING" and r.after and set(r.after) <= done]
    if ready:
        await conn.execute(
            update(StepRow)
            .where(StepRow.session == session, StepRow.key.in_(ready), StepRow.next_at == NEVER)
            .values(next_at=now)
        )


async def stop_steps(conn: AsyncConnection, session: str, now: datetime) -> None:
    """Cancel every open step and make the release step due now."""
    await conn.execute(
        update(StepRow)
        .where(StepRow.session == session, StepRow.state.in_(_OPEN), StepRow.kind != "release")
        .values(state="CANCELLED", finished=now, lease_until=None)
    )
    await conn.execute(
        update(StepRow)
        .where(StepRow.session == session, StepRow.kind == "release", StepRow.state == "PENDING")
        .values(next_at=now)
    )


def is_interactive(kind: str) -> bool:
    return kind in _INTERACTIVE_KINDS
