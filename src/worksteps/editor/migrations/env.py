"""Alembic environment: run by ``worksteps.core.migrations.upgrade`` with a connection."""

from alembic import context

from worksteps.editor.db.tables import Base

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=Base.metadata,
    version_table=config.attributes.get("version_table", "alembic_version_editor"),
)
with context.begin_transaction():
    context.run_migrations()
