"""Alembic environment: always run with a connection handed in by ``db.migrate.upgrade``."""

from alembic import context

from worksteps.broker.db.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
