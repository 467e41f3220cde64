"""A throwaway broker database, migrated by the product and loaded with confirmed bookings.

Every row goes in through the product's own tables (``worksteps.broker.db.tables``) after the
product's own migrations, so the broker under test sees exactly what it would have written
itself: one ``sites`` row, one accepted offer set that all preloaded sessions belong to, and per
booking an ACCEPTED session row and a BOOKED row in the capacity calendar.

The load is shaped like a busy site rather than a stress pattern. Starts are uniform from a few
hours ago to ``horizon`` ahead (a few sessions are running now), durations are log-normal
(median 3 h, 15 min to 3 days), sizes are mostly small. The site's capacity is derived from the
bookings so that its mean utilisation over the horizon is ``utilisation`` (65 % by default):
busy, with peaks near full, yet a modest request still finds room. More bookings therefore mean
a bigger site with the same shape, and the share of bookings that overlap a request's window is
the same at every size.
"""

from __future__ import annotations

import math
import random
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from worksteps.broker.db.migrate import upgrade
from worksteps.broker.db.tables import BookingRow, OfferSetRow, SessionRow, SiteRow
from worksteps.core.database import Database, async_url
from worksteps.schema import kinds

__all__ = ["Preloaded", "SiteCapacity", "preload", "throwaway_database"]

SITE = "bench-site"
_CHUNK = 5_000
_PAST = timedelta(hours=6)  # earliest preloaded start, so some sessions are running now
_CORES = (1, 2, 4, 8, 16)
_CORE_WEIGHTS = (30, 30, 20, 15, 5)
_GIB_PER_CORE = (2, 4, 8)
# Added to the capacity that gives the wanted utilisation: the biggest benchmark request
# (8 cores, 32 GiB, a few GiB of storage) always fits an idle site, even a 1k-booking one.
_HEADROOM = (16, 64, 100)


@dataclass(frozen=True)
class SiteCapacity:
    cores: int
    memory: int
    gpus: int
    storage: int


@dataclass(frozen=True)
class Preloaded:
    """What was loaded: how many bookings, the capacity that fits them, and how long it took."""

    bookings: int
    capacity: SiteCapacity
    seconds: float


@asynccontextmanager
async def throwaway_database(engine: str, admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database URL for ``engine`` ("sqlite" or "postgresql"), removed after.

    PostgreSQL: ``CREATE DATABASE`` on the server of ``admin_url`` and ``DROP … WITH (FORCE)``
    afterwards, so a broker that died with open connections cannot leave the database behind.
    """
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="worksteps-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'broker.sqlite'}"
        return
    name = f"worksteps_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            base = admin_url.rsplit("/", 1)[0]
            yield f"{base}/{name}"
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _duration(rng: random.Random) -> timedelta:
    hours = rng.lognormvariate(math.log(3.0), 0.9)
    return timedelta(hours=min(max(hours, 0.25), 72.0))


def _bookings(count: int, now: datetime, horizon: timedelta, rng: random.Random) -> list[Any]:
    """``count`` (start, end, cores, memory, storage) tuples, each still running or to come."""
    span = (horizon + _PAST).total_seconds()
    made: list[Any] = []
    while len(made) < count:
        start = now - _PAST + timedelta(seconds=rng.uniform(0.0, span))
        end = start + _duration(rng)
        if end <= now + timedelta(minutes=1):
            continue  # over already: not an active booking
        cores = rng.choices(_CORES, _CORE_WEIGHTS)[0]
        memory = cores * rng.choice(_GIB_PER_CORE)
        made.append((start, end, cores, memory, rng.randint(1, 100)))
    return made


def _capacity(bookings: list[Any], now: datetime, utilisation: float) -> SiteCapacity:
    hours = 0.0
    used = [0.0, 0.0, 0.0]
    for start, end, cores, memory, storage in bookings:
        length = (end - max(start, now)).total_seconds() / 3600
        hours = max(hours, (end - now).total_seconds() / 3600)
        for i, amount in enumerate((cores, memory, storage)):
            used[i] += amount * length
    cores, memory, storage = (
        math.ceil(u / hours / utilisation) + room for u, room in zip(used, _HEADROOM, strict=True)
    )
    return SiteCapacity(cores=cores, memory=memory, gpus=0, storage=storage)


async def preload(
    url: str,
    count: int,
    *,
    horizon: timedelta = timedelta(days=30),
    utilisation: float = 0.65,
    seed: int = 20261128,
) -> Preloaded:
    """Migrate ``url`` to the product's schema and fill it with ``count`` BOOKED bookings."""
    begun = datetime.now(UTC)
    now = begun
    rng = random.Random(seed + count)
    rows = _bookings(count, now, horizon, rng)
    db = Database(url)
    try:
        await upgrade(db)
        offerset = str(uuid.uuid4())
        async with db.write() as conn:
            await conn.execute(insert(SiteRow).values(name=SITE, version=0))
            await conn.execute(
                insert(OfferSetRow).values(
                    uuid=offerset,
                    site=SITE,
                    owner=None,
                    created=now,
                    expires=now,
                    result="YES",
                    accepted=None,
                    body={"kind": kinds.OFFERSET, "meta": {"uuid": offerset}, "result": "YES"},
                )
            )
        for first in range(0, len(rows), _CHUNK):
            chunk = rows[first : first + _CHUNK]
            ids = [str(uuid.uuid4()) for _ in chunk]
            async with db.write() as conn:
                await conn.execute(
                    insert(SessionRow),
                    [
                        {
                            "uuid": sid,
                            "offerset": offerset,
                            "site": SITE,
                            "owner": None,
                            "phase": "ACCEPTED",
                            "version": 1,
                            "created": now,
                            "modified": now,
                            "expires": now,
                            "body": {
                                "kind": kinds.SESSION_SCHEDULED,
                                "meta": {"uuid": sid, "name": f"preloaded-{first + i}"},
                            },
                        }
                        for i, sid in enumerate(ids)
                    ],
                )
                await conn.execute(
                    insert(BookingRow),
                    [
                        {
                            "session": sid,
                            "site": SITE,
                            "state": "BOOKED",
                            "start": start,
                            "end": end,
                            "hold_expires": None,
                            "cores": cores,
                            "memory": memory,
                            "gpus": 0,
                            "storage": storage,
                        }
                        for sid, (start, end, cores, memory, storage) in zip(
                            ids, chunk, strict=True
                        )
                    ],
                )
        if not db.is_sqlite:
            # What autovacuum does within a minute of a bulk load; the product never runs
            # ANALYZE on SQLite, so neither does the benchmark.
            async with db.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
            # And what the server's next checkpoint does: the WAL written by CREATE DATABASE
            # and the load is recycled as the segments to come. Without it, a server with no
            # spare segments (as one is after a reboot) creates and zero-fills a new 16 MB
            # segment while the timed requests run, and every commit waits 60-100 ms for it:
            # seen in about half the runs, always in the p99 (wal_init_zero=off removed it).
            # In steady state a server writes into recycled segments.
            async with db.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("CHECKPOINT"))
    finally:
        await db.dispose()
    seconds = (datetime.now(UTC) - begun).total_seconds()
    return Preloaded(count, _capacity(rows, now, utilisation), seconds)
