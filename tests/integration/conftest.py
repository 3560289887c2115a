"""A migrated throwaway PostgreSQL database for the integration tests (docs/contract.md §15).

The database comes from `tests.support.database`: `CTMS_TEST_DB_URL`'s server, else the embedded one. No
database is an error with the reason, never a skip. Fixtures are lazy: only tests that ask for the
database provision it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import create_engine, metadata
from ctms_adapters.postgres.migrations import upgrade
from ctms_adapters.postgres.tables import schema_history
from tests.support.database import provision_test_database
from tests.support.leaked_connections import (
    collect_leaked_connections,
    remember_where_connections_open,
)

remember_where_connections_open()

# Every table but the migrations' bookkeeping (alembic_version, schema_history), in one statement.
_TRUNCATE = text(
    "TRUNCATE {} RESTART IDENTITY CASCADE".format(
        ", ".join(
            f'"{table.name}"' for table in metadata.sorted_tables if table is not schema_history
        )
    )
)


@pytest.fixture(scope="module", autouse=True)
def _report_leaked_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each module, the asyncpg connections it dropped unclosed, with where they were opened
    (`tests.support.leaked_connections`)."""
    yield
    collect_leaked_connections(after=request.module.__name__)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The `postgresql+asyncpg` URL of a database migrated to the head revision."""
    with provision_test_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        database_url, pool_size=5, max_overflow=5, pool_timeout=10, pool_recycle=-1, echo=False
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def empty_database(engine: AsyncEngine) -> AsyncEngine:
    """The session's engine over tables emptied before the test."""
    async with engine.begin() as connection:
        await connection.execute(_TRUNCATE)
    return engine


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement sent to PostgreSQL through asyncpg while the test runs."""
    sent: list[str] = []
    for method in ("fetch", "execute"):
        original = getattr(asyncpg.Connection, method)

        async def counting(
            self: Any, query: str, *args: Any, _original: Any = original, **kw: Any
        ) -> Any:
            sent.append(query)
            return await _original(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, method, counting)
    return sent
