"""The preparation engine: durable steps and the event log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from worksteps.core.database import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "steps",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("session", sa.String(36), sa.ForeignKey("sessions.uuid"), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("after", JSONDoc, nullable=False),
        sa.Column("params", JSONDoc, nullable=False),
        sa.Column("result", JSONDoc, nullable=True),
        sa.Column("ref", sa.String(512), nullable=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("polls", sa.Integer, nullable=False),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("started", UTCDateTime(), nullable=True),
        sa.Column("progressed", UTCDateTime(), nullable=True),
        sa.Column("finished", UTCDateTime(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger, nullable=True),
        sa.Column("bytes_total", sa.BigInteger, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_index("ix_steps_session", "steps", ["session"])
    op.create_index("ix_steps_next_at", "steps", ["next_at"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session", sa.String(36), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("body", JSONDoc, nullable=False),
    )
    op.create_index("ix_events_session", "events", ["session"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("steps")
