"""The integration suite's report of asyncpg connections dropped without closing
(`tests/support/leaked_connections.py`)."""

from __future__ import annotations

import warnings

import asyncpg
import pytest

from tests.support.database import to_asyncpg_dsn
from tests.support.leaked_connections import LeakedConnectionWarning, collect_leaked_connections


async def _open_and_drop(dsn: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    # A reference cycle, as an exception's traceback makes: only the collector can free it.
    cycle: list[object] = [connection]
    cycle.append(cycle)


async def test_a_dropped_open_connection_is_reported_with_where_it_was_opened(
    database_url: str,
) -> None:
    await _open_and_drop(to_asyncpg_dsn(database_url))
    with pytest.warns(LeakedConnectionWarning) as reported:
        collect_leaked_connections(after="this test")
    message = str(reported[0].message)
    assert message.startswith("left by this test or earlier: unclosed connection")
    assert "test_leaked_connections.py" in message and "_open_and_drop" in message


async def test_a_closed_connection_is_not_reported(database_url: str) -> None:
    connection = await asyncpg.connect(to_asyncpg_dsn(database_url), timeout=10)
    await connection.close()
    cycle: list[object] = [connection]
    cycle.append(cycle)
    del connection, cycle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect_leaked_connections(after="this test")
    assert [w for w in caught if w.category is LeakedConnectionWarning] == []
