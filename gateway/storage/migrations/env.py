"""Alembic environment: online migrations against the configured URL."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from gateway.storage.schema import metadata

config = context.config


def run() -> None:
    """Run migrations in a transaction."""
    connectable = engine_from_config(config.get_section(config.config_ini_section) or {},
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run()
