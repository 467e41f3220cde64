"""Keeping worksteps: every version, the latest one moved by compare-and-set, and deletion.

The store knows nothing of users: it reads and writes what it is given. Ownership is the
service's rule. Every method is one transaction, so a refused write changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy import delete, insert, select, update

from worksteps.core.database import Database
from worksteps.core.errors import Conflict
from worksteps.core.migrations import upgrade
from worksteps.editor.db.tables import VersionRow, WorkstepRow
from worksteps.editor.model import Workstep

__all__ = ["MIGRATIONS", "VERSION_TABLE", "VersionInfo", "WorkstepStore", "stale_version"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_editor"


@dataclass(frozen=True)
class VersionInfo:
    """One entry of a workstep's history."""

    version: int
    created: datetime
    author: str
    change: str


def stale_version(uuid: UUID, based_on: int, current: int) -> Conflict:
    return Conflict(
        f"Workstep {uuid} is at version {current}; this change was based on version "
        f"{based_on}. Read it again and redo the change.",
        reason="stale-version",
        extra={"currentVersion": current, "basedOn": based_on},
    )


class WorkstepStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def migrate(self) -> None:
        await upgrade(self.db, MIGRATIONS, VERSION_TABLE)

    async def insert(self, workstep: Workstep, *, author: str, change: str) -> None:
        """Store a new workstep (its first version)."""
        async with self.db.write() as conn:
            await conn.execute(
                insert(WorkstepRow).values(
                    uuid=str(workstep.uuid),
                    owner=workstep.owner,
                    name=workstep.name,
                    version=workstep.version,
                    created=workstep.created,
                    modified=workstep.modified,
                )
            )
            await conn.execute(insert(VersionRow).values(**self._version(workstep, author, change)))

    async def append(self, workstep: Workstep, *, based_on: int, author: str, change: str) -> None:
        """Store ``workstep`` as the version after ``based_on``; Conflict if that is stale."""
        async with self.db.write() as conn:
            moved = await conn.execute(
                update(WorkstepRow)
                .where(WorkstepRow.uuid == str(workstep.uuid), WorkstepRow.version == based_on)
                .values(version=workstep.version, modified=workstep.modified, name=workstep.name)
            )
            if moved.rowcount != 1:
                current = await conn.scalar(
                    select(WorkstepRow.version).where(WorkstepRow.uuid == str(workstep.uuid))
                )
                raise stale_version(workstep.uuid, based_on, int(current or 0))
            await conn.execute(insert(VersionRow).values(**self._version(workstep, author, change)))

    @staticmethod
    def _version(workstep: Workstep, author: str, change: str) -> dict[str, object]:
        return {
            "uuid": str(workstep.uuid),
            "version": workstep.version,
            "created": workstep.modified,
            "author": author,
            "change": change,
            "body": workstep.model_dump(mode="json"),
        }

    async def owner(self, uuid: UUID) -> str | None:
        async with self.db.read() as conn:
            found = await conn.scalar(
                select(WorkstepRow.owner).where(WorkstepRow.uuid == str(uuid))
            )
            return str(found) if found is not None else None

    async def get(self, uuid: UUID, version: int | None = None) -> Workstep | None:
        """The workstep at ``version`` (the latest when None), or None."""
        query = select(VersionRow.body).join(WorkstepRow, WorkstepRow.uuid == VersionRow.uuid)
        query = query.where(VersionRow.uuid == str(uuid))
        if version is None:
            query = query.where(VersionRow.version == WorkstepRow.version)
        else:
            query = query.where(VersionRow.version == version)
        async with self.db.read() as conn:
            body = await conn.scalar(query)
        return Workstep.model_validate(body) if body is not None else None

    async def latest(
        self, owner: str | None, *, limit: int = 100, offset: int = 0
    ) -> list[Workstep]:
        """The latest version of each workstep of ``owner`` (all when None), newest first."""
        query = (
            select(VersionRow.body)
            .join(WorkstepRow, WorkstepRow.uuid == VersionRow.uuid)
            .where(VersionRow.version == WorkstepRow.version)
            .order_by(WorkstepRow.modified.desc(), WorkstepRow.uuid)
            .limit(limit)
            .offset(offset)
        )
        if owner is not None:
            query = query.where(WorkstepRow.owner == owner)
        async with self.db.read() as conn:
            rows = (await conn.scalars(query)).all()
        return [Workstep.model_validate(body) for body in rows]

    async def versions(self, uuid: UUID) -> list[VersionInfo]:
        query = (
            select(VersionRow.version, VersionRow.created, VersionRow.author, VersionRow.change)
            .where(VersionRow.uuid == str(uuid))
            .order_by(VersionRow.version)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [VersionInfo(r.version, r.created, r.author, r.change) for r in rows]

    async def delete(self, uuid: UUID, *, based_on: int | None = None) -> bool:
        """Remove a workstep and its history; Conflict when ``based_on`` is stale."""
        async with self.db.write() as conn:
            current = await conn.scalar(
                select(WorkstepRow.version).where(WorkstepRow.uuid == str(uuid))
            )
            if current is None:
                return False
            if based_on is not None and based_on != current:
                raise stale_version(uuid, based_on, int(current))
            await conn.execute(delete(VersionRow).where(VersionRow.uuid == str(uuid)))
            await conn.execute(delete(WorkstepRow).where(WorkstepRow.uuid == str(uuid)))
            return True
