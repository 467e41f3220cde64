"""The execution service's tables (its own metadata and Alembic version table)."""
