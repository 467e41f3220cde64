"""Alembic environment: run with a connection and version table handed in by
``worksteps.core.migrations.upgrade``."""

from alembic import context

from worksteps.execution.db.tables import ExecutionBase

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=ExecutionBase.metadata,
    version_table=config.attributes["version_table"],
)
with context.begin_transaction():
    context.run_migrations()
