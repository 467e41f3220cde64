"""The broker's database as the benchmark sees it: made and removed per configuration, and
read (never written) afterwards for what the events do not say.

The ``steps`` table records when the worker began submitting each step (``started``, before
its first write) and how many polls it took; with the events this splits a hand-over between
steps into the worker picking the step up and the site call that submits it. On PostgreSQL the
server's own counters give the transactions the broker committed.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from worksteps.broker.db.tables import StepRow
from worksteps.core.database import Database, async_url

__all__ = ["StepFacts", "reachable", "step_facts", "throwaway_database", "transactions"]


@dataclass(frozen=True)
class StepFacts:
    started: float | None  # POSIX seconds; the worker began submitting
    polls: int


@asynccontextmanager
async def throwaway_database(engine: str, admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for ``engine``, removed afterwards (``DROP … WITH (FORCE)``)."""
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
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        await engine.dispose()
    return None


async def step_facts(url: str, sessions: Iterable[str]) -> dict[tuple[str, str], StepFacts]:
    """``{(session, step key): facts}`` for the given sessions."""
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(StepRow.session, StepRow.key, StepRow.started, StepRow.polls).where(
                    StepRow.session.in_(list(sessions))
                )
            )
            return {
                (r.session, r.key): StepFacts(
                    r.started.timestamp() if r.started is not None else None, int(r.polls)
                )
                for r in rows
            }
    finally:
        await db.dispose()


async def transactions(url: str) -> int | None:
    """Transactions committed or rolled back in the database so far (PostgreSQL only)."""
    if not url.startswith("postgresql"):
        return None
    name = url.rsplit("/", 1)[1]
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            found = await conn.execute(
                text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"
                ),
                {"name": name},
            )
            return int(found.scalar() or 0)
    finally:
        await engine.dispose()
