"""Async SQLAlchemy engines for SQLite (embedded default) and PostgreSQL (production).

:class:`Database` hands out read and write units of work. Writes on SQLite are serialised in
the process and begin ``IMMEDIATE`` (SQLite allows one writer; taking the lock up front avoids
the lock-upgrade deadlock of deferred transactions). On PostgreSQL writes run concurrently and
rely on row locks, so several processes can share one database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

__all__ = ["Database", "UTCDateTime", "async_url"]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite keeps naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def async_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


class Database:
    """One engine and the policy for reading and writing through it."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        if self.url.endswith(":memory:"):
            kwargs["poolclass"] = NullPool
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            self._configure_sqlite()

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide where transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.info.get("begin_mode", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

    @property
    def write_lock(self) -> asyncio.Lock:
        """The lock every SQLite writer of this process holds (:meth:`write` takes it); a
        writer with its own connection takes it too, so none waits in SQLite's busy handler."""
        return self._write_lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on any exception."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            conn.sync_connection.info["begin_mode"] = "IMMEDIATE"  # type: ignore[union-attr]
            try:
                async with conn.begin():
                    yield conn
            finally:
                conn.sync_connection.info["begin_mode"] = "DEFERRED"  # type: ignore[union-attr]

    async def dispose(self) -> None:
        await self.engine.dispose()
