"""Tables of the execution service. Documents are JSON beside the columns that are queried.

``executions`` holds one row per execution request of a user, ``execution_brokers`` what each
broker answered, ``execution_offers`` each offer with its rank and what became of it. The
table names start with ``execution`` so the service may share a database with others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from worksteps.core.database import UTCDateTime

__all__ = ["BrokerAnswerRow", "ExecutionBase", "ExecutionRow", "OfferRow"]

JSONDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class ExecutionBase(DeclarativeBase):
    pass


class ExecutionRow(ExecutionBase):
    __tablename__ = "executions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256), index=True)
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    modified: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[float] = mapped_column(Float)
    request: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    workstep: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    selected: Mapped[str | None] = mapped_column(String(36), nullable=True)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    broker: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    session_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    session: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


class BrokerAnswerRow(ExecutionBase):
    __tablename__ = "execution_brokers"
    execution: Mapped[str] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16))
    elapsed: Mapped[float | None] = mapped_column(Float, nullable=True)
    messages: Mapped[list[str]] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    offerset: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    late: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


class OfferRow(ExecutionBase):
    __tablename__ = "execution_offers"
    execution: Mapped[str] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
