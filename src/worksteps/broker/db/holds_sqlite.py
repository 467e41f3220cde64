"""The offer store on SQLite: a whole placement in one call to a thread with its own connection.

SQLite allows one writer at a time, so a placement simply takes the write lock
(``BEGIN IMMEDIATE``) before reading the changes: nothing can be stored in between, by this
process or another, and no retry is ever needed. Inside this process the placement first
queues on the same :class:`asyncio.Lock` as every SQLAlchemy writer, so the lock it then takes
in SQLite is free unless another process holds it.

Changes are found by ``bookings.stamp > since``: the trigger of migration 0006 numbers every
change of a site's bookings from the counter ``sites.changes``, and with one writer at a time
the numbers become visible in order.

The thread owns a plain ``sqlite3`` connection, set up as :class:`~worksteps.core.database.
Database` sets up its own (WAL, ``synchronous=NORMAL``, foreign keys, a 30 s busy timeout), and
writes the values in SQLAlchemy's formats (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` text,
JSON text), so either side reads what the other wrote.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from worksteps.broker.db.holds import BookingChanges, Decide, NewOfferSet, Since
from worksteps.broker.planner.ledger import StoredBooking
from worksteps.broker.planner.model import Resources

__all__ = ["SqliteHoldStore"]

T = TypeVar("T")

# Times come back as ISO text with an offset, which ``datetime.fromisoformat`` reads directly.
_COLUMNS = """
SELECT session, state, hold_expires || '+00:00', start || '+00:00', "end" || '+00:00',
       cores, memory, gpus, storage
FROM bookings
"""
_ALL = (
    _COLUMNS
    + """WHERE site = ? AND "end" > ?
  AND (state = 'BOOKED' OR (state = 'HELD' AND hold_expires > ?))"""
)
_CHANGED = _COLUMNS + "WHERE site = ? AND stamp > ?"
_COUNTER = "SELECT changes FROM sites WHERE name = ?"
_BUMP = "UPDATE sites SET version = version + 1 WHERE name = ?"
_NEW_SITE = "INSERT INTO sites (name, version, changes) VALUES (?, 1, 0)"
_OFFERSET = """
INSERT INTO offersets (uuid, site, owner, created, expires, result, accepted, body)
VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
"""
_SESSION = """
INSERT INTO sessions (uuid, offerset, site, owner, phase, version, created, modified, expires,
                      body)
VALUES (?, ?, ?, ?, 'OFFERED', 0, ?, ?, ?, ?)
"""
_COMPONENT = "INSERT INTO components (uuid, session, family) VALUES (?, ?, ?)"
_BOOKING = """
INSERT INTO bookings (session, site, state, start, "end", hold_expires, cores, memory, gpus,
                      storage)
VALUES (?, ?, 'HELD', ?, ?, ?, ?, ?, ?, ?)
"""


def _text(value: datetime) -> str:
    """An aware instant as SQLAlchemy stores it on SQLite: naive UTC with microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _booking(row: tuple[Any, ...]) -> StoredBooking:
    session, state, held, start, end, cores, memory, gpus, storage = row
    instant = datetime.fromisoformat
    return StoredBooking(
        session,
        state in ("BOOKED", "HELD"),
        instant(held) if state == "HELD" and held is not None else None,
        instant(start),
        instant(end),
        Resources(cores, memory, gpus, storage),
    )


class SqliteHoldStore:
    """:class:`~worksteps.broker.db.holds.HoldStore` on an SQLite file."""

    def __init__(self, path: str, write_lock: asyncio.Lock) -> None:
        self._path = path
        self._write_lock = write_lock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="offer-store")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # autocommit mode: transactions are begun and ended here, explicitly
            conn = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._conn = conn
        return self._conn

    async def _in_thread(self, call: partial[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def place(self, site: str, since: Since, now: datetime, decide: Decide) -> NewOfferSet:
        async with self._write_lock:
            return await self._in_thread(partial(self._place, site, since, now, decide))

    async def close(self) -> None:
        await self._in_thread(partial(self._close))
        self._thread.shutdown()

    # -- in the store's thread -------------------------------------------------------------------

    def _place(self, site: str, since: Since, now: datetime, decide: Decide) -> NewOfferSet:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            made = decide(self._changes(conn, site, since(), now))
            if made.holds and conn.execute(_BUMP, (site,)).rowcount == 0:
                conn.execute(_NEW_SITE, (site,))
            self._insert(conn, made)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return made

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @staticmethod
    def _changes(
        conn: sqlite3.Connection, site: str, since: int | None, now: datetime
    ) -> BookingChanges:
        counter = conn.execute(_COUNTER, (site,)).fetchone()
        upto = counter[0] if counter else 0
        if since is None:
            moment = _text(now)
            found = conn.execute(_ALL, (site, moment, moment)).fetchall()
        else:
            found = conn.execute(_CHANGED, (site, since)).fetchall()
        return BookingChanges(list(map(_booking, found)), since is None, upto)

    @staticmethod
    def _insert(conn: sqlite3.Connection, made: NewOfferSet) -> None:
        created, expires = _text(made.created), _text(made.expires)
        conn.execute(
            _OFFERSET,
            (made.uuid, made.site, made.owner, created, expires, made.result, made.body),
        )
        if not made.holds:
            return
        sessions: list[tuple[Any, ...]] = []
        bookings: list[tuple[Any, ...]] = []
        for h in made.holds:
            sessions.append(
                (h.session, made.uuid, made.site, made.owner, created, created, expires, h.document)
            )
            start, end = _text(h.start), _text(h.end)
            bookings.append((h.session, made.site, start, end, expires, *h.resources))
        conn.executemany(_SESSION, sessions)
        conn.executemany(_COMPONENT, made.components)
        conn.executemany(_BOOKING, bookings)
