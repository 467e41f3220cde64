"""The execution service's first schema: executions, broker answers, offers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from worksteps.core.database import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("modified", UTCDateTime(), nullable=False),
        sa.Column("deadline", sa.Float, nullable=False),
        sa.Column("request", JSONDoc, nullable=False),
        sa.Column("workstep", JSONDoc, nullable=True),
        sa.Column("selected", sa.String(36), nullable=True),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("broker", sa.String(2048), nullable=True),
        sa.Column("session_url", sa.String(2048), nullable=True),
        sa.Column("phase", sa.String(16), nullable=True),
        sa.Column("session", JSONDoc, nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("provenance", JSONDoc, nullable=True),
    )
    op.create_index("ix_executions_owner", "executions", ["owner"])
    op.create_index("ix_executions_created", "executions", ["created"])
    op.create_table(
        "execution_brokers",
        sa.Column(
            "execution",
            sa.String(36),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("elapsed", sa.Float, nullable=True),
        sa.Column("messages", JSONDoc, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("offerset", sa.String(2048), nullable=True),
        sa.Column("late", JSONDoc, nullable=True),
    )
    op.create_table(
        "execution_offers",
        sa.Column(
            "execution",
            sa.String(36),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=True),
        sa.Column("summary", JSONDoc, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("execution_offers")
    op.drop_table("execution_brokers")
    op.drop_index("ix_executions_created", "executions")
    op.drop_index("ix_executions_owner", "executions")
    op.drop_table("executions")
