"""Alembic environment: online migrations against the configured URL."""

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from gateway.storage.schema import metadata

config = context.config
# Several workers (Kubernetes pods, each with an init container) may upgrade one PostgreSQL
# database at the same moment: the first takes this lock and migrates, the others wait and
# then find the schema at head. Transaction-level, so it ends with the migration.
MIGRATION_LOCK = 0x54494C4D


def run() -> None:
    """Run migrations in a transaction."""
    connectable = engine_from_config(config.get_section(config.config_ini_section) or {},
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            context.run_migrations()


run()
