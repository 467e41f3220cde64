"""The editor's tables (SQLAlchemy 2) and their Alembic migrations (``editor/migrations``)."""
