"""Index bookings by start too, so a window's bookings are found without reading every
future one.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bookings_site_state_start", "bookings", ["site", "state", "start"])


def downgrade() -> None:
    op.drop_index("ix_bookings_site_state_start", "bookings")
