"""The connection of one unit of work, with its transaction begun only when a write needs it.

Reads run on the connection in autocommit mode: a unit of work that only reads (GET by id, lookups,
`/updates`) then costs one round trip per query instead of `BEGIN` + query + `ROLLBACK`. Under READ
COMMITTED — the isolation every unit of work uses — each statement sees its own snapshot whether or not
it runs inside a transaction, so reading before `BEGIN` observes exactly what it would have observed
after it; writes, and reads that lock rows, always run inside the transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

READS_ISOLATION = "AUTOCOMMIT"
TRANSACTION_ISOLATION = "READ COMMITTED"


class TransactionScope:
    """Tracks whether the unit's transaction has begun and whether it already holds work.

    `begin()` opens the transaction for a statement that must be part of it (a write, a row lock).
    `atomic()` wraps a group of writes that must all happen or leave no trace (one `add`/`save`): inside
    a transaction that already holds work it uses a SAVEPOINT, so the work survives a failed group; when
    the group is the first work of the transaction it needs none (two round trips saved) — rolling back
    the whole transaction loses nothing but the group itself.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._in_transaction = False
        self._holds_work = False

    async def begin(self) -> None:
        """Make the following statements part of the transaction (opening it if needed)."""
        await self._open()
        self._holds_work = True

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        await self._open()
        if self._holds_work:
            async with self.connection.begin_nested():
                yield
        else:
            try:
                yield
            except BaseException:
                await self.rollback()
                raise
        self._holds_work = True

    async def commit(self) -> None:
        await self.connection.commit()
        await self._back_to_reads()

    async def rollback(self) -> None:
        await self.connection.rollback()
        await self._back_to_reads()

    async def _open(self) -> None:
        if not self._in_transaction:
            # Ends the SQLAlchemy-level "transaction" that autocommit reads opened; nothing is sent, and
            # the isolation level may only change outside one. BEGIN goes out with the next statement.
            await self.connection.commit()
            await self.connection.execution_options(isolation_level=TRANSACTION_ISOLATION)
            self._in_transaction = True

    async def _back_to_reads(self) -> None:
        if self._in_transaction:
            await self.connection.execution_options(isolation_level=READS_ISOLATION)
            self._in_transaction = False
        self._holds_work = False
