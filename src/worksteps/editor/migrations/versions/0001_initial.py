"""The editor's first schema: worksteps and their versions.

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
        "worksteps",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("modified", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_worksteps_owner", "worksteps", ["owner"])
    op.create_index("ix_worksteps_modified", "worksteps", ["modified"])
    op.create_table(
        "workstep_versions",
        sa.Column(
            "uuid",
            sa.String(36),
            sa.ForeignKey("worksteps.uuid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("change", sa.String(64), nullable=False),
        sa.Column("body", JSONDoc, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workstep_versions")
    op.drop_index("ix_worksteps_modified", "worksteps")
    op.drop_index("ix_worksteps_owner", "worksteps")
    op.drop_table("worksteps")
