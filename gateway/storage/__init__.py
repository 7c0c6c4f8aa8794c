"""Storage: SQLAlchemy 2 with Alembic migrations; SQLite (WAL) or PostgreSQL."""
