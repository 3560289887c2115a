"""`DatabaseHealth` on PostgreSQL: what the heartbeat and the contact-count gauge ask."""

from __future__ import annotations

from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.unavailable import reports_unavailability

# Below this many contacts an exact count is cheap, and it is what a fresh database needs: PostgreSQL
# reports -1 tuples for a table it has never vacuumed or analysed.
EXACT_COUNT_LIMIT: Final = 10_000

_ESTIMATE = text(
    """
    SELECT CASE
        WHEN c.reltuples >= 0 THEN c.reltuples::bigint
        ELSE (SELECT count(*) FROM (SELECT 1 FROM emails LIMIT :exact_limit) AS sample)
    END
    FROM pg_class AS c
    WHERE c.oid = to_regclass('emails')
    """
)


@reports_unavailability
class PostgresDatabaseHealth:
    def __init__(self, engine: AsyncEngine) -> None:
        # The engine's connections are in autocommit: one round trip per check, no BEGIN/ROLLBACK.
        self._engine = engine

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def estimate_contact_count(self) -> int:
        """`pg_class.reltuples` of `emails`, an exact count (capped) when PostgreSQL has no estimate
        yet; never negative (docs/contract.md §10)."""
        async with self._engine.connect() as connection:
            count = await connection.scalar(_ESTIMATE, {"exact_limit": EXACT_COUNT_LIMIT})
        return max(int(count or 0), 0)
