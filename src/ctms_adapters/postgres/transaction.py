"""The connection of one unit of work, with its transaction begun only when a write needs it.

Reads run on the connection in autocommit mode: a unit of work that only reads (GET by id, lookups,
`/updates`) then costs one round trip per query instead of `BEGIN` + query + `ROLLBACK`. Under READ
COMMITTED — the isolation every unit of work uses — each statement sees its own snapshot whether or not
it runs inside a transaction, so reading before `BEGIN` observes exactly what it would have observed
after it; writes, and reads that lock rows, always run inside the transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

READS_ISOLATION = "AUTOCOMMIT"
TRANSACTION_ISOLATION = "READ COMMITTED"

_DRIVER_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_SAVEPOINT = "ctms_atomic"


class DriverRead:
    """A SELECT built with SQLAlchemy Core and compiled once, at import, to the SQL text asyncpg runs.

    The hot reads (a contact by id, `/updates` pages, an API client) go straight to the asyncpg
    connection with it: SQLAlchemy's execution layer costs more CPU per statement than the database
    spends answering it. Parameters get the same conversions SQLAlchemy would apply.
    """

    __slots__ = ("_converters", "_parameter_names", "sql", "statement")

    def __init__(self, statement: Select[Any]) -> None:
        compiled = statement.compile(dialect=_DRIVER_DIALECT)
        self.statement = statement
        self.sql = compiled.string
        self._parameter_names = tuple(compiled.positiontup or ())
        converters: list[Callable[[Any], Any] | None] = []
        for name in self._parameter_names:
            converter = compiled._bind_processors.get(name)
            if converter is not None and not callable(converter):  # tuple-valued parameters
                raise ValueError(f"unsupported parameter {name!r} in a DriverRead")
            converters.append(converter)
        self._converters = tuple(converters)

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional arguments of `sql` from named parameters."""
        return [
            parameters[name] if convert is None else convert(parameters[name])
            for name, convert in zip(self._parameter_names, self._converters, strict=True)
        ]


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

    async def rows(
        self, read: DriverRead, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of `read`, on the asyncpg connection itself unless the transaction has been asked
        for and not begun yet (SQLAlchemy sends its BEGIN with the first statement it runs)."""
        driver = self._driver()
        if driver is not None and (not self._in_transaction or driver.is_in_transaction()):
            try:
                records: Sequence[Sequence[Any]] = await driver.fetch(
                    read.sql, *read.arguments(parameters)
                )
            except Exception:  # noqa: S110 - reported by the SQLAlchemy run below
                # Reads are idempotent: run it again through SQLAlchemy, which raises its own error
                # types and, on a broken connection, invalidates the pool so the next unit reconnects.
                pass
            else:
                return records
        result = await self.connection.execute(read.statement, parameters)
        rows: Sequence[Sequence[Any]] = result.all()
        return rows

    def _driver(self) -> Any:
        """The asyncpg connection under SQLAlchemy's, None once SQLAlchemy has invalidated it."""
        synchronous = self.connection.sync_connection
        if synchronous is None or synchronous.invalidated:
            return None
        # A plain attribute of a checked-out connection (`get_raw_connection()` would cost a greenlet
        # switch for the same object).
        return synchronous.connection.driver_connection

    async def begin(self) -> None:
        """Make the following statements part of the transaction (opening it if needed)."""
        await self._open()
        self._holds_work = True

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        await self._open()
        if not self._holds_work:
            try:
                yield
            except BaseException:
                await self.rollback()
                raise
        else:
            driver = self._driver()
            if driver is not None and driver.is_in_transaction():
                # The same SAVEPOINT SQLAlchemy's begin_nested() would send, without the CPU cost of
                # two more statements through its execution layer.
                await driver.execute(f"SAVEPOINT {_SAVEPOINT}")
                try:
                    yield
                except BaseException:
                    await driver.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                    raise
                await driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            else:
                async with self.connection.begin_nested():
                    yield
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
