"""Provision a throwaway PostgreSQL database for the integration tests (docs/contract.md §15).

``CTMS_TEST_DB_URL`` points at an existing server (CI uses the machine's); without it the embedded
server runs in a temporary directory. Either way the tests get a fresh database of their own, and
no database at all is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError

TEST_DB_URL_VARIABLE = "CTMS_TEST_DB_URL"


def to_asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg understands, from a SQLAlchemy URL of any PostgreSQL driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def to_sqlalchemy_url(url: str, *, database: str | None = None) -> str:
    """The ``postgresql+asyncpg`` URL for ``url``, optionally pointing at another database."""
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def provision_test_database() -> Iterator[str]:
    """Yield the SQLAlchemy asyncpg URL of a new empty database; drop it (and its server) after."""
    admin_url = os.environ.get(TEST_DB_URL_VARIABLE)
    if admin_url:
        with throwaway_database(admin_url, origin=f"{TEST_DB_URL_VARIABLE}={admin_url}") as url:
            yield url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="ctms-test-pg-"))
    try:
        server = EmbeddedPostgres(data_dir, fsync=False)
        try:
            server.start()
        except EmbeddedPostgresError as exc:
            raise RuntimeError(
                f"No database for the integration tests: {TEST_DB_URL_VARIABLE} is not set and "
                f"the embedded PostgreSQL did not start:\n{exc}"
            ) from exc
        try:
            with throwaway_database(server.url, origin="the embedded PostgreSQL") as url:
                yield url
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def throwaway_database(admin_url: str, *, origin: str) -> Iterator[str]:
    """Yield the SQLAlchemy asyncpg URL of a new empty database on `admin_url`'s server (another test
    database's URL will do); drop it after."""
    name = f"ctms_test_{secrets.token_hex(6)}"
    dsn = to_asyncpg_dsn(admin_url)
    try:
        _run_sql(dsn, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise RuntimeError(
            f"No database for the integration tests: cannot create one through {origin}: {exc!r}"
        ) from exc
    try:
        yield to_sqlalchemy_url(admin_url, database=name)
    finally:
        _run_sql(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_sql(dsn: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    _run_in_private_loop(run())


def _run_in_private_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a private loop in a thread: callers may already be inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, coroutine).result()


async def until_a_backend(engine: AsyncEngine, condition: str, what: str) -> None:
    """Wait until another backend of the test database matches `condition` (SQL over
    `pg_stat_activity`), polling for at most 4 s; `what` names the awaited event in the failure."""
    matching = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        f" AND pid <> pg_backend_pid() AND ({condition})"
    )
    for _ in range(200):
        async with engine.connect() as connection:
            if (await connection.execute(matching)).scalar_one():
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} never happened")
