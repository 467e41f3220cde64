"""Tables of the Workstep Editor: one head row per workstep and one row per version.

``worksteps.version`` is the latest version; an edit moves it with a compare-and-set
(``UPDATE … WHERE version = :based_on``), so of two edits based on the same version exactly
one wins on every engine, and the loser changes nothing. ``workstep_versions.body`` holds the
whole workstep at that version as JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worksteps.core.database import UTCDateTime

__all__ = ["Base", "VersionRow", "WorkstepRow"]

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class WorkstepRow(Base):
    __tablename__ = "worksteps"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256), index=True)
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    modified: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class VersionRow(Base):
    __tablename__ = "workstep_versions"
    uuid: Mapped[str] = mapped_column(
        ForeignKey("worksteps.uuid", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str] = mapped_column(String(256))
    change: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
