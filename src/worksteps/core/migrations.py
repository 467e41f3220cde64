"""Bring a service's database to its current schema with Alembic, from inside the service.

Each service keeps its own migration scripts and its own version table, so several services
may share one PostgreSQL database. On PostgreSQL an advisory lock per service makes concurrent
start-ups of several replicas safe.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from worksteps.core.database import Database

__all__ = ["upgrade"]


def _upgrade(connection: Connection, scripts: Path, version_table: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(version_table.encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    command.upgrade(config, "head")


async def upgrade(database: Database, scripts: Path, version_table: str) -> None:
    """Run the Alembic scripts in ``scripts`` up to head.

    The scripts' ``env.py`` reads ``config.attributes["connection"]`` and
    ``config.attributes["version_table"]`` (pass it to ``context.configure``).
    """
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade, scripts, version_table)
