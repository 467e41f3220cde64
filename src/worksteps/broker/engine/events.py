"""The event log of sessions and the in-process wake-up that makes long-poll and SSE prompt.

Events are rows with a monotonic id. Readers ask for the events after an id; a reader in this
process is woken at once when an event is appended here, and re-reads the table at least every
``recheck`` seconds so events appended by another broker replica are not missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import EventRow
from worksteps.core.database import Database
from worksteps.schema.isotime import format_instant

__all__ = ["EventBus", "append_event", "events_after", "last_event_id"]


async def append_event(
    conn: AsyncConnection, session: str, kind: str, body: dict[str, Any], now: datetime
) -> None:
    await conn.execute(insert(EventRow).values(session=session, time=now, type=kind, body=body))


async def events_after(
    db: Database, session: str, after: int, limit: int = 500
) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(EventRow)
            .where(EventRow.session == session, EventRow.id > after)
            .order_by(EventRow.id)
            .limit(limit)
        )
        return [
            {"id": r.id, "type": r.type, "time": format_instant(r.time), **r.body} for r in rows
        ]


async def last_event_id(db: Database, session: str) -> int:
    async with db.read() as conn:
        found = await conn.execute(select(func.max(EventRow.id)).where(EventRow.session == session))
        return int(found.scalar() or 0)


class EventBus:
    """Wakes the waiters of a session when this process appends one of its events."""

    def __init__(self, recheck: float = 0.5) -> None:
        self.recheck = recheck
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, session: str) -> None:
        for waiter in self._waiters.get(session, ()):
            waiter.set()

    async def wait(self, session: str, seconds: float) -> None:
        """Return when ``session`` may have new events, or after ``seconds``."""
        waiter = asyncio.Event()
        self._waiters.setdefault(session, set()).add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=max(0.0, min(seconds, self.recheck)))
        finally:
            waiters = self._waiters.get(session)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[session]
