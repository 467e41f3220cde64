"""Tables of the broker. Documents are stored as JSON beside the columns that are queried.

``bookings`` is the capacity calendar: one row per offer (a hold, until ``hold_expires``) or
accepted session (booked). A hold past its expiry no longer counts even before the expiry
sweeper has marked it released, so correctness never waits for the sweeper. A trigger stamps
every change of a booking (``stamp``), so a broker can follow the calendar's changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worksteps.core.database import UTCDateTime

__all__ = [
    "Base",
    "BookingRow",
    "ComponentRow",
    "EventRow",
    "OfferSetRow",
    "SessionRow",
    "SiteRow",
    "StepRow",
]

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class SiteRow(Base):
    """One row per site. ``version`` grows with every stored offer set that holds capacity
    (the offer path's check that nobody planned in between, see
    :mod:`worksteps.broker.db.holds`); ``changes`` counts booking changes on SQLite."""

    __tablename__ = "sites"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


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
    """An offer and what became of it. ``version`` counts changes of the document (phase,
    connectors, messages); ``events`` is the sequence number of its latest event."""

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
    events: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


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
    # set by a trigger on every insert and update (migration 0006): what changed since when
    stamp: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    __table_args__ = (
        Index("ix_bookings_site_state_end", "site", "state", "end"),
        Index("ix_bookings_site_state_start", "site", "state", "start"),
        Index("ix_bookings_site_stamp", "site", "stamp"),
    )


class StepRow(Base):
    """One durable preparation step of a session (see :mod:`worksteps.broker.engine`).

    ``ref`` (the external reference: rule id, transfer job, Skaha session id) is written before
    the step is ever polled; ``state`` SUBMITTING marks a submission whose answer may have been
    lost in a crash, to be recovered by looking the operation up rather than submitting again.
    """

    __tablename__ = "steps"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    session: Mapped[str] = mapped_column(ForeignKey("sessions.uuid"), index=True)
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(12))
    after: Mapped[list[str]] = mapped_column(JSONDoc)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    ref: Mapped[str | None] = mapped_column(String(512), nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    interval: Mapped[float] = mapped_column(Float, default=0.0)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    progressed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bytes_done: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class EventRow(Base):
    """Every phase or progress change of a session, numbered ``seq`` = 1, 2, 3… per session.

    ``seq`` is taken from ``sessions.events`` under the session's row lock (see
    :func:`worksteps.broker.engine.events.append_event`), so a session's events commit in
    ``seq`` order and a reader that has seen ``seq`` n can never later find an n' < n it
    missed; the global ``id`` carries no such promise on PostgreSQL.
    """

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    type: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONDoc)

    __table_args__ = (Index("ux_events_session_seq", "session", "seq", unique=True),)
