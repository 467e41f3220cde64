"""The offer store on PostgreSQL: plan on a snapshot, store with one version-checked statement.

A placement reads the bookings that changed and ``sites.version`` in one statement (one
snapshot), plans without any lock, then stores the offer set, its sessions, components and
holds in one statement that first locks the ``sites`` row and goes on only if the version is
still the one read (and then bumps it): if another placement for the site (in any replica)
stored holds in between, nothing is inserted and the placement reads the newer changes and
plans again. The row lock is held for that one statement only. After ``_OPTIMISTIC`` lost
races the last attempt locks the row before reading, so it cannot lose and a busy site cannot
starve a request.

Changes are found by transaction id (the trigger of migration 0006 stamps each row with its
writer's ``pg_current_xact_id()``): a read also returns the ``xmin`` of its snapshot, below
which every transaction has ended, and the next read asks for ``stamp >= xmin``. Rows of
transactions that were still running are so read again, which is harmless.

Within this process placements queue on one :class:`asyncio.Lock` (planning is quick), so
they never conflict with each other; conflicts come only from other replicas. The store keeps
one connection of its own (``asyncpg``, reconnected when lost), outside SQLAlchemy's pool;
the lock also keeps its uses one at a time, as a connection requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs; used at this boundary only

from worksteps.broker.db.holds import BookingChanges, Decide, NewOfferSet, Since
from worksteps.broker.planner.ledger import StoredBooking
from worksteps.broker.planner.model import Resources

__all__ = ["PostgresHoldStore"]

T = TypeVar("T")

_OPTIMISTIC = 3

_COLUMNS = """
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
       (SELECT version FROM sites WHERE name = $1),
       array_agg(session), array_agg(state), array_agg(hold_expires),
       array_agg(start), array_agg("end"),
       array_agg(cores), array_agg(memory), array_agg(gpus), array_agg(storage)
FROM bookings
"""
_ALL = (
    _COLUMNS
    + """WHERE site = $1 AND "end" > $2
  AND (state = 'BOOKED' OR (state = 'HELD' AND hold_expires > $2))"""
)
_CHANGED = _COLUMNS + "WHERE site = $1 AND stamp >= $2"
_NEW_SITE = "INSERT INTO sites (name, version) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING"
_LOCK_SITE = "SELECT version FROM sites WHERE name = $1 FOR UPDATE"
_OFFERSET = """
INSERT INTO offersets (uuid, site, owner, created, expires, result, accepted, body)
VALUES ($1, $2, $3, $4, $5, $6, NULL, $7::jsonb)
"""
# Every step reads from ``claim``: when the version moved on, nothing at all is inserted.
# (Foreign keys between the steps are checked at the end of the statement.)
_PLACE = """
WITH claim AS (
    UPDATE sites SET version = version + 1 WHERE name = $1 AND version = $2 RETURNING version
), offerset AS (
    INSERT INTO offersets (uuid, site, owner, created, expires, result, accepted, body)
    SELECT $3::varchar, $1::varchar, $4::varchar, $5::timestamptz, $6::timestamptz, 'YES',
           NULL, $7::jsonb
    FROM claim
), session AS (
    INSERT INTO sessions (uuid, offerset, site, owner, phase, version, created, modified,
                          expires, body)
    SELECT s.uuid, $3::varchar, $1::varchar, $4::varchar, 'OFFERED', 0, $5::timestamptz,
           $5::timestamptz, $6::timestamptz, s.body::jsonb
    FROM claim, unnest($8::varchar[], $9::text[]) AS s(uuid, body)
), component AS (
    INSERT INTO components (uuid, session, family)
    SELECT c.uuid, c.session, c.family
    FROM claim, unnest($10::varchar[], $11::varchar[], $12::varchar[]) AS c(uuid, session, family)
), booking AS (
    INSERT INTO bookings (session, site, state, start, "end", hold_expires, cores, memory,
                          gpus, storage)
    SELECT b.session, $1::varchar, 'HELD', b.start, b.finish, $6::timestamptz, b.cores,
           b.memory, b.gpus, b.storage
    FROM claim, unnest($8::varchar[], $13::timestamptz[], $14::timestamptz[], $15::int[],
                       $16::int[], $17::int[], $18::int[])
         AS b(session, start, finish, cores, memory, gpus, storage)
)
SELECT version FROM claim
"""

_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
)


class PostgresHoldStore:
    """:class:`~worksteps.broker.db.holds.HoldStore` on a PostgreSQL database."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn)
        return self._conn

    async def _with_connection(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``work``; when the connection turns out lost (a database restart) or broken,
        once more on a new one. A lost ``_PLACE`` may have committed: the retry then only
        holds more."""
        conn = await self._connection()
        try:
            return await work(conn)
        except _LOST:
            # the connection may not know yet that the server ended it: drop it either way
            conn.terminate()
            self._conn = None
            return await work(await self._connection())

    async def place(self, site: str, since: Since, now: datetime, decide: Decide) -> NewOfferSet:
        async def attempt(conn: asyncpg.Connection) -> NewOfferSet:
            for _ in range(_OPTIMISTIC):
                version, changes = await self._changes(conn, site, since(), now)
                made = decide(changes)
                if not made.holds:
                    await self._add(conn, made)
                    return made
                if await conn.fetchval(_PLACE, *_place_arguments(made, version)) is not None:
                    return made
            async with conn.transaction():
                await conn.fetchval(_LOCK_SITE, site)
                version, changes = await self._changes(conn, site, since(), now)
                made = decide(changes)
                if not made.holds:
                    await self._add(conn, made)
                elif await conn.fetchval(_PLACE, *_place_arguments(made, version)) is None:
                    raise RuntimeError(f"sites.version of {site!r} moved under its row lock")
                return made

        async with self._lock:
            return await self._with_connection(attempt)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()

    @staticmethod
    async def _add(conn: asyncpg.Connection, m: NewOfferSet) -> None:
        await conn.execute(
            _OFFERSET, m.uuid, m.site, m.owner, m.created, m.expires, m.result, m.body
        )

    @staticmethod
    async def _changes(
        conn: asyncpg.Connection, site: str, since: int | None, now: datetime
    ) -> tuple[int, BookingChanges]:
        query, argument = (_ALL, now) if since is None else (_CHANGED, since)
        row = await conn.fetchrow(query, site, argument)
        if row[1] is None:  # the site's first offers: make its row, then read again
            await conn.execute(_NEW_SITE, site)
            row = await conn.fetchrow(query, site, argument)
        upto, version, sessions, *columns = row
        rows = [] if sessions is None else list(map(_booking, sessions, *columns))
        return version, BookingChanges(rows, since is None, upto)


def _booking(
    session: str,
    state: str,
    held: datetime | None,
    start: datetime,
    end: datetime,
    cores: int,
    memory: int,
    gpus: int,
    storage: int,
) -> StoredBooking:
    counts = state in ("BOOKED", "HELD")
    held_until = held if state == "HELD" else None
    return StoredBooking(
        session, counts, held_until, start, end, Resources(cores, memory, gpus, storage)
    )


def _place_arguments(made: NewOfferSet, version: int) -> tuple[Any, ...]:
    holds = made.holds
    sessions = [h.session for h in holds]
    components = made.components
    return (
        made.site,
        version,
        made.uuid,
        made.owner,
        made.created,
        made.expires,
        made.body,
        sessions,
        [h.document for h in holds],
        [c[0] for c in components],
        [c[1] for c in components],
        [c[2] for c in components],
        [h.start for h in holds],
        [h.end for h in holds],
        *([h.resources[i] for h in holds] for i in range(4)),
    )
