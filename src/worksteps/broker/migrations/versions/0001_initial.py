"""The broker's first schema: sites, offer sets, sessions, components, bookings.

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
        "sites",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "offersets",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(256), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=False),
        sa.Column("result", sa.String(3), nullable=False),
        sa.Column("accepted", sa.String(36), nullable=True),
        sa.Column("body", JSONDoc, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("offerset", sa.String(36), sa.ForeignKey("offersets.uuid"), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(256), nullable=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("modified", UTCDateTime(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=False),
        sa.Column("body", JSONDoc, nullable=False),
    )
    op.create_index("ix_sessions_offerset", "sessions", ["offerset"])
    op.create_index("ix_sessions_phase", "sessions", ["phase"])
    op.create_index("ix_sessions_expires", "sessions", ["expires"])
    op.create_table(
        "components",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("session", sa.String(36), sa.ForeignKey("sessions.uuid"), nullable=False),
        sa.Column("family", sa.String(16), nullable=False),
    )
    op.create_index("ix_components_session", "components", ["session"])
    op.create_table(
        "bookings",
        sa.Column("session", sa.String(36), sa.ForeignKey("sessions.uuid"), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("hold_expires", UTCDateTime(), nullable=True),
        sa.Column("cores", sa.Integer, nullable=False),
        sa.Column("memory", sa.Integer, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("storage", sa.Integer, nullable=False),
    )
    op.create_index("ix_bookings_site_state_end", "bookings", ["site", "state", "end"])


def downgrade() -> None:
    for table in ("bookings", "components", "sessions", "offersets", "sites"):
        op.drop_table(table)
