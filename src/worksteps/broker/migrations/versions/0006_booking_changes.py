"""Stamp every change of a booking, so a broker can follow the calendar instead of reading it.

``bookings.stamp`` is set by a trigger on every insert and update, whoever writes (the offer
path, sessions, the engine, another replica), and ``ix_bookings_site_stamp`` finds the rows
changed since a stamp. What a stamp is depends on the engine:

- SQLite (one writer at a time): a counter per site, ``sites.changes``, bumped by the trigger;
  the rows changed since counter value ``n`` are those with ``stamp > n``.
- PostgreSQL (concurrent writers): the writing transaction's id (``pg_current_xact_id()``).
  Transactions commit out of id order, so a reader keeps the ``xmin`` of its snapshot (every
  transaction below it has ended) and next asks for ``stamp >= xmin``; rows of transactions
  still running then are read again later, and reading a row twice is harmless. No lock is
  taken, so releasing capacity never waits for the offer path.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TRACKED = 'site, state, start, "end", hold_expires, cores, memory, gpus, storage'

_SQLITE_STAMP = """
INSERT INTO sites (name, version, changes) VALUES (NEW.site, 0, 1)
    ON CONFLICT (name) DO UPDATE SET changes = changes + 1;
UPDATE bookings SET stamp = (SELECT changes FROM sites WHERE name = NEW.site)
    WHERE rowid = NEW.rowid;
"""

_POSTGRES_FUNCTION = """
CREATE FUNCTION bookings_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.stamp := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "bookings", sa.Column("stamp", sa.BigInteger, nullable=False, server_default=sa.text("0"))
    )
    op.add_column(
        "sites", sa.Column("changes", sa.BigInteger, nullable=False, server_default=sa.text("0"))
    )
    op.create_index("ix_bookings_site_stamp", "bookings", ["site", "stamp"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER bookings_stamp BEFORE INSERT OR UPDATE ON bookings "
            "FOR EACH ROW EXECUTE FUNCTION bookings_stamp()"
        )
        return
    # The trigger's own UPDATE sets only ``stamp``, which is not tracked: it never recurses.
    op.execute(
        f"CREATE TRIGGER bookings_stamp_insert AFTER INSERT ON bookings BEGIN {_SQLITE_STAMP} END"
    )
    op.execute(
        f"CREATE TRIGGER bookings_stamp_update AFTER UPDATE OF {_TRACKED} ON bookings "
        f"BEGIN {_SQLITE_STAMP} END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER bookings_stamp ON bookings")
        op.execute("DROP FUNCTION bookings_stamp()")
    else:
        op.execute("DROP TRIGGER bookings_stamp_update")
        op.execute("DROP TRIGGER bookings_stamp_insert")
    op.drop_index("ix_bookings_site_stamp", "bookings")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("changes")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("stamp")
