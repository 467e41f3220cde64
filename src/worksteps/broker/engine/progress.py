"""What step results mean for a session: its phase, connectors, booking and events.

Only this module moves sessions on the broker's account; every move goes through
:func:`worksteps.broker.lifecycle.transition` and is appended to the event log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import SessionRow, StepRow
from worksteps.broker.engine.events import append_event
from worksteps.broker.engine.plan import plan_steps
from worksteps.broker.lifecycle import Actor, Allowed, SessionPhase, transition
from worksteps.broker.settings import EngineSettings
from worksteps.schema.isotime import format_instant

__all__ = [
    "NEVER",
    "Woken",
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
    row = (
        await conn.execute(select(SessionRow.phase, SessionRow.body).where(SessionRow.uuid == uuid))
    ).first()
    if row is None:
        return False
    source = SessionPhase(row.phase)
    if not isinstance(transition(source, target, Actor.BROKER), Allowed):
        return False
    values: dict[str, Any] = {
        "phase": target.value,
        "modified": now,
        "version": SessionRow.version + 1,
        "events": SessionRow.events + 1,
    }
    if changes or message:
        values["body"] = _with_changes(dict(row.body), target, now, message, changes)
    done = (
        await conn.execute(
            update(SessionRow)
            .where(SessionRow.uuid == uuid, SessionRow.phase == source.value)
            .values(values)
            .returning(SessionRow.events)
        )
    ).first()
    if done is None:
        return False
    event: dict[str, Any] = {"phase": target.value, "from": source.value}
    if message:
        event["message"] = message
    await append_event(conn, uuid, "phase", event, now, seq=done.events)
    return True


def _with_changes(
    body: dict[str, Any],
    target: SessionPhase,
    now: datetime,
    message: str | None,
    changes: dict[str, Any] | None,
) -> dict[str, Any]:
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
    return body


async def schedule_preparation(
    conn: AsyncConnection,
    uuid: str,
    doc: dict[str, Any],
    user: str,
    engine: EngineSettings,
    now: datetime,
    booking: tuple[datetime, datetime],
) -> None:
    """Create the steps of an accepted session, booked from ``booking[0]`` to
    ``booking[1]``: the first ones due when preparation should begin, the release due when
    the booking ends. (The caller moves the session to WAITING.)"""
    start, end = booking
    first = max(now, start - _preparation_lead(doc))
    planned = [
        (step.key, step.kind, step.after, step.params, NEVER if step.after else first)
        for step in plan_steps(uuid, doc, user, engine)
    ]
    planned.append(("release", "release", [], {}, end))
    rows = [
        {
            "id": f"{uuid}:{key}",
            "session": uuid,
            "key": key,
            "kind": kind,
            "state": "PENDING",
            "after": after,
            "params": params,
            "result": None,
            "ref": None,
            "failures": 0,
            "polls": 0,
            "interval": 0.0,
            "next_at": due,
            "lease_until": None,
        }
        for key, kind, after, params, due in planned
    ]
    await conn.execute(insert(StepRow), rows)


def _preparation_lead(doc: dict[str, Any]) -> timedelta:
    preparing = (doc.get("schedule") or {}).get("preparing") or {}
    duration = preparing.get("duration")
    if not duration:
        return timedelta(0)
    from worksteps.schema.isotime import parse_duration

    return parse_duration(str(duration))


@dataclass(frozen=True)
class Woken:
    """What :func:`wake_dependents` did: the rows it claimed, their inputs' results (by step
    key), and the ids it left due for any worker."""

    claimed: list[Any]
    results: dict[str, dict[str, Any]]
    left: list[str]


async def wake_dependents(
    conn: AsyncConnection,
    session: str,
    now: datetime,
    lease_until: datetime | None = None,
    limit: int = 0,
    later: Mapping[str, float] | None = None,
) -> Woken:
    """Make due every waiting step whose inputs are all done.

    With ``lease_until``, up to ``limit`` of them are claimed for the calling worker (in state
    SUBMITTING, so that a crash before their submission is recovered by looking the operation
    up); the others are left due for any worker. Steps of a kind in ``later`` are neither
    claimed nor due at once, but that many seconds from ``now`` (a step with nothing to do
    before then holds no worker meanwhile).

    On PostgreSQL the caller must hold the session's row lock (any event appended earlier in
    the transaction takes it): two steps finishing at once then see each other's result, and
    the step that needs both is never left waiting.
    """
    rows = list(
        await conn.execute(
            select(
                StepRow.id,
                StepRow.key,
                StepRow.kind,
                StepRow.state,
                StepRow.after,
                StepRow.next_at,
                StepRow.result,
            ).where(StepRow.session == session)
        )
    )
    results = {r.key: dict(r.result or {}) for r in rows if r.state == "DONE"}
    done = results.keys()
    later = later or {}
    woken = [
        r
        for r in rows
        if r.state == "PENDING" and r.next_at == NEVER and r.after and set(r.after) <= done
    ]
    waiting = (StepRow.state == "PENDING", StepRow.next_at == NEVER)
    for r in woken:
        if r.kind in later:
            due = now + timedelta(seconds=later[r.kind])
            await conn.execute(
                update(StepRow).where(StepRow.id == r.id, *waiting).values(next_at=due)
            )
    ready = sorted(r.id for r in woken if r.kind not in later)
    claimed: list[Any] = []
    if ready and lease_until is not None and limit > 0:
        claimed = list(
            await conn.execute(
                update(StepRow)
                .where(StepRow.id.in_(ready[:limit]), *waiting)
                .values(next_at=now, lease_until=lease_until, state="SUBMITTING", started=now)
                .returning(StepRow)
            )
        )
    taken = {r.id for r in claimed}
    left = [i for i in ready if i not in taken]
    if left:
        await conn.execute(
            update(StepRow).where(StepRow.id.in_(left), *waiting).values(next_at=now)
        )
    return Woken(claimed, results, left)


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
