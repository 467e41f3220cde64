"""Number each session's events gap-free: ``events.seq`` from the counter ``sessions.events``.

The global ``events.id`` comes from a sequence, and on PostgreSQL concurrent transactions may
commit its values out of order, so a reader following ``id`` could step over an event that
became visible later. ``seq`` is taken under the session's row lock instead. Existing events
are numbered in ``id`` order (they were written before any reader depended on ``seq``).

Revision ID: 0005
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sessions", sa.Column("events", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.add_column(
        "events", sa.Column("seq", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.execute(
        "UPDATE events SET seq = (SELECT count(*) FROM events AS e "
        "WHERE e.session = events.session AND e.id <= events.id)"
    )
    op.execute(
        "UPDATE sessions SET events = "
        "(SELECT coalesce(max(e.seq), 0) FROM events AS e WHERE e.session = sessions.uuid)"
    )
    op.create_index("ux_events_session_seq", "events", ["session", "seq"], unique=True)
    op.drop_index("ix_events_session", "events")  # the new index serves its queries


def downgrade() -> None:
    op.create_index("ix_events_session", "events", ["session"])
    op.drop_index("ux_events_session_seq", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("events")
