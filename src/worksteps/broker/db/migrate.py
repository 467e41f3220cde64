"""Bring a database to the current schema with Alembic, from inside the running service.

PostgreSQL: an advisory lock makes concurrent start-ups of several broker replicas safe.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from worksteps.core.database import Database

__all__ = ["upgrade"]

_SCRIPTS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x57_4B_53_54  # arbitrary, constant: "WKST"


def _upgrade(connection: Connection, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    command.upgrade(config, revision)


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring ``database`` to ``revision`` (the current schema unless a test asks otherwise)."""
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)
