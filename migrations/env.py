"""Alembic environment: the schema of `ctms_adapters.postgres.tables`, applied over asyncpg.

The database URL is, in order: a connection handed over by `ctms_adapters.postgres.migrations`
(`config.attributes["connection"]`), `config.attributes["url"]`, `alembic -x url=...`, the
`sqlalchemy.url` option of alembic.ini, then the `CTMS_DB_URL` environment variable.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from ctms_adapters.postgres.engine import async_url, connect_args
from ctms_adapters.postgres.migrations import record_history
from ctms_adapters.postgres.tables import metadata

# Any constant shared by every CTMS process: concurrent upgrades (several servers starting at once) wait
# for each other instead of racing to create the same tables.
MIGRATION_LOCK_KEY = 0x43544D53  # "CTMS"

config = context.config
target_metadata = metadata

# The `alembic` command line logs as alembic.ini says; programmatic runs (no ini file) leave the
# application's logging alone.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    candidates = (
        config.attributes.get("url"),
        context.get_x_argument(as_dictionary=True).get("url"),
        config.get_main_option("sqlalchemy.url"),
        os.environ.get("CTMS_DB_URL"),
    )
    for candidate in candidates:
        if candidate:
            return str(candidate)
    raise RuntimeError("No database URL: pass -x url=..., or set CTMS_DB_URL")


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        # Every revision applied or stamped goes into schema_history, which the start-up check of
        # older and newer releases reads (docs/adr/0006-schema-revisions-at-start.md).
        on_version_apply=record_history,
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: print the SQL instead of running it."""
    _configure(url=async_url(_database_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(
        async_url(_database_url()),
        poolclass=pool.NullPool,
        connect_args=connect_args("ctms-migrations"),
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
