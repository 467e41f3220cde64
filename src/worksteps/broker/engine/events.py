"""The event log of sessions and the in-process wake-up that makes long-poll and SSE prompt.

Each session's events are numbered ``seq`` = 1, 2, 3… from the counter ``sessions.events``,
incremented in the appending transaction. The increment takes the session's row lock (on
SQLite, the database write lock), which the transaction keeps until it commits, so a
session's events become visible in ``seq`` order: a reader that has seen ``seq`` n never
later finds an unseen event below n. (The global ``events.id`` has no such property on
PostgreSQL, where concurrent transactions may commit sequence values out of order.)

Readers ask for the events after a ``seq``. A reader in this process subscribes to its
session and is woken at once when this process commits a change to it; it re-reads the table
at least every ``recheck`` seconds, so changes made by another broker replica are not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import EventRow, SessionRow
from worksteps.core.database import Database
from worksteps.schema.isotime import format_instant

__all__ = [
    "Event",
    "EventBus",
    "Subscription",
    "append_event",
    "append_events",
    "events_after",
    "next_seq",
]


@dataclass(frozen=True)
class Event:
    """An event to append whose ``seq`` the caller has taken (see :func:`next_seq`)."""

    session: str
    seq: int
    type: str
    body: dict[str, Any]


async def append_event(
    conn: AsyncConnection,
    session: str,
    kind: str,
    body: dict[str, Any],
    now: datetime,
    seq: int | None = None,
) -> int:
    """Append an event to ``session``'s log and return its ``seq``.

    ``seq``: the value the caller has already taken by incrementing ``sessions.events`` in
    this transaction (see :func:`next_seq`); taken here otherwise.
    """
    if seq is None:
        seq = await next_seq(conn, session)
    await conn.execute(
        insert(EventRow).values(session=session, seq=seq, time=now, type=kind, body=body)
    )
    return seq


async def append_events(conn: AsyncConnection, events: Sequence[Event], now: datetime) -> None:
    """Append several events at once (one statement)."""
    if events:
        rows = [
            {"session": e.session, "seq": e.seq, "time": now, "type": e.type, "body": e.body}
            for e in events
        ]
        await conn.execute(insert(EventRow), rows)


async def next_seq(conn: AsyncConnection, session: str) -> int:
    """Take ``session``'s next event number (and its row lock, until the transaction ends)."""
    taken = await conn.execute(
        update(SessionRow)
        .where(SessionRow.uuid == session)
        .values(events=SessionRow.events + 1)
        .returning(SessionRow.events)
    )
    return int(taken.scalar_one())


async def events_after(
    db: Database, session: str, after: int, limit: int = 500
) -> list[dict[str, Any]]:
    """``session``'s events with ``seq`` > ``after``, in order; each event's ``id`` is its
    ``seq``."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(EventRow.seq, EventRow.type, EventRow.time, EventRow.body)
            .where(EventRow.session == session, EventRow.seq > after)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return [
            {"id": r.seq, "type": r.type, "time": format_instant(r.time), **r.body} for r in rows
        ]


class Subscription:
    """Set when the subscribed session may have changed since the last :meth:`clear`."""

    def __init__(self, recheck: float) -> None:
        self.recheck = recheck
        self._changed = asyncio.Event()

    def set(self) -> None:
        self._changed.set()

    def is_set(self) -> bool:
        return self._changed.is_set()

    def clear(self) -> None:
        """Call before reading, so a change committed during the read is not missed."""
        self._changed.clear()

    async def wait(self, seconds: float) -> None:
        """Return when a change was signalled since :meth:`clear`, or after ``seconds``
        (at most ``recheck``: another replica's changes are not signalled)."""
        timeout = max(0.0, min(seconds, self.recheck))
        # not wait_for, which runs the wait in a task of its own: a wake-up would then take
        # three turns of the event loop to reach the follower instead of one
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()


class EventBus:
    """Wakes the subscribers of a session when this process commits a change to it."""

    def __init__(self, recheck: float = 0.5) -> None:
        self.recheck = recheck
        self._subscribers: dict[str, set[Subscription]] = {}

    def notify(self, session: str) -> None:
        for subscriber in self._subscribers.get(session, ()):
            subscriber.set()

    @contextlib.contextmanager
    def subscribe(self, session: str) -> Iterator[Subscription]:
        """Follow ``session`` for the duration of the ``with`` block."""
        subscription = Subscription(self.recheck)
        self._subscribers.setdefault(session, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(session)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[session]
