"""Schema migrations (alembic) callable from plain synchronous code: the CLI, tests, embedders.

Each helper runs on a private event loop in a worker thread, so it works the same whether or not the
caller is inside a running loop, and never touches the caller's loop.

Where the alembic scripts are: `CTMS_MIGRATIONS_DIR` if set; else `_migrations/` next to this module (a
wheel ships the repository's `migrations/` there, via hatch `force-include`); else the repository's
`migrations/` (a source checkout or an editable install).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from ctms_adapters.postgres.engine import async_url, connect_args
from ctms_adapters.postgres.tables import metadata

MIGRATIONS_DIR_VARIABLE = "CTMS_MIGRATIONS_DIR"
PACKAGED_MIGRATIONS = Path(__file__).with_name("_migrations")
# src/ctms_adapters/postgres/migrations.py -> the repository root
SOURCE_MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

Result = TypeVar("Result")


def script_location() -> Path:
    """The directory holding alembic's `env.py` and `versions/`."""
    configured = os.environ.get(MIGRATIONS_DIR_VARIABLE)
    candidates = [Path(configured)] if configured else [PACKAGED_MIGRATIONS, SOURCE_MIGRATIONS]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    searched = ", ".join(str(candidate) for candidate in candidates)
    raise FileNotFoundError(f"CTMS migrations not found (looked in {searched})")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision the scripts know."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError("the migration scripts define no revision")
    return revision


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (concurrent callers wait for each other)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    _run_on_connection(url, run, commit=True)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" removes every table)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    _run_on_connection(url, run, commit=True)


def current(url: str) -> str | None:
    """The revision the database at `url` is at; None when it was never migrated."""

    def run(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return _run_on_connection(url, run, commit=False)


def check(url: str) -> list[str]:
    """Differences between `metadata` and the database at `url`, as alembic's autogenerate sees them
    (tables, columns, types, nullability, server defaults, indexes, unique and foreign keys); an empty
    list means the migrations produce exactly the schema the code expects."""

    def run(connection: Connection) -> list[str]:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True},
        )
        return [_describe(difference) for difference in compare_metadata(context, metadata)]

    return _run_on_connection(url, run, commit=False)


def _describe(difference: Any) -> str:
    """One line per difference: the operation and the names of what it concerns."""
    if isinstance(difference, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in difference)
    operation, *details = difference
    return f"{operation}: " + ", ".join(_name_of(detail) for detail in details)


def _name_of(detail: Any) -> str:
    name = getattr(detail, "name", None)
    table = getattr(detail, "table", None)
    if name is not None and table is not None and getattr(table, "name", None):
        return f"{table.name}.{name}"
    return str(name) if name is not None else repr(detail)


def _run_on_connection(url: str, work: Callable[[Connection], Result], *, commit: bool) -> Result:
    async def run() -> Result:
        engine = create_async_engine(
            async_url(url),
            poolclass=pool.NullPool,
            connect_args=connect_args("ctms-migrations"),
        )
        try:
            async with engine.connect() as connection:
                result = await connection.run_sync(work)
                if commit:
                    await connection.commit()
                return result
        finally:
            await engine.dispose()

    return _run_in_private_loop(run())


def _run_in_private_loop(coroutine: Coroutine[Any, Any, Result]) -> Result:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctms-migrations") as executor:
        return executor.submit(asyncio.run, coroutine).result()
