"""Tables of the broker. Documents are stored as JSON beside the columns that are queried.

``bookings`` is the capacity calendar: one row per offer (a hold, until ``hold_expires``) or
accepted session (booked). A hold past its expiry no longer counts even before the expiry
sweeper has marked it released, so correctness never waits for the sweeper.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worksteps.core.database import UTCDateTime

__all__ = ["Base", "BookingRow", "ComponentRow", "OfferSetRow", "SessionRow", "SiteRow"]

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class SiteRow(Base):
    """One row per site; updating it serialises the planning of new offers."""

    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class OfferSetRow(Base):
    __tablename__ = "offersets"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())
    result: Mapped[str] = mapped_column(String(3))
    accepted: Mapped[str | None] = mapped_column(String(36), nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class SessionRow(Base):
    __tablename__ = "sessions"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    offerset: Mapped[str] = mapped_column(ForeignKey("offersets.uuid"), index=True)
    site: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    phase: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    modified: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)


class ComponentRow(Base):
    """Where each component UUID lives, so the ``meta.url`` of every component resolves."""

    __tablename__ = "components"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    session: Mapped[str] = mapped_column(ForeignKey("sessions.uuid"), index=True)
    family: Mapped[str] = mapped_column(String(16))


class BookingRow(Base):
    __tablename__ = "bookings"
    session: Mapped[str] = mapped_column(ForeignKey("sessions.uuid"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cores: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)
    storage: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_bookings_site_state_end", "site", "state", "end"),)
