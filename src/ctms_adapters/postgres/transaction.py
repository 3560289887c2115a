"""The connection of one unit of work, with its transaction begun only when a write needs it.

Reads run on the connection in autocommit mode: a unit of work that only reads (GET by id, lookups,
`/updates`) then costs one round trip per query instead of `BEGIN` + query + `ROLLBACK`. Under READ
COMMITTED — the isolation every unit of work uses — each statement sees its own snapshot whether or not
it runs inside a transaction, so reading before `BEGIN` observes exactly what it would have observed
after it; writes, and reads that lock rows, run inside the transaction — except a unit's only write,
which is one statement and atomic by itself in autocommit (`PendingWrites`). See
docs/adr/0008-explicit-contact-write.md.

The transaction is the asyncpg connection's own (`BEGIN_TRANSACTION` … `COMMIT`), not SQLAlchemy's: the
engine's connections stay in autocommit as far as SQLAlchemy knows, so statements it executes join the
transaction without it sending BEGIN itself. The hot statements (`DriverStatement`) go
to asyncpg directly: SQLAlchemy's execution layer costs three times the CPU asyncpg spends on a statement
(measured 0.15 vs 0.05 ms), and as much again for BEGIN and COMMIT. The unit of work closes the scope
before the connection returns to the pool, rolling back whatever was not committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    ARRAY,
    Delete,
    Insert,
    Select,
    String,
    Update,
    bindparam,
    exc,
    func,
)
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from ctms_adapters.postgres.unavailable import DatabaseUnavailableError, is_unavailability

READS_ISOLATION = "AUTOCOMMIT"
# The transaction's opening, one message: READ COMMITTED (what every unit of work uses), and generic plans
# for its statements. The writes are multi-CTE statements over bound arrays whose plan does not depend on
# the values; re-planning them on every execution (PostgreSQL's custom plans) cost more database CPU than
# running them (measured: PostgreSQL CPU per PATCH 1.6 → 1.1 ms). Reads keep PostgreSQL's own choice.
BEGIN_TRANSACTION = (
    "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL plan_cache_mode = force_generic_plan"
)

AnySelect = Select[*tuple[Any, ...]]  # a SELECT of any columns
_DRIVER_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_SAVEPOINT = "ctms_atomic"
# SQLSTATE class 23: integrity constraint violation.
_INTEGRITY_CLASS = "23"


class DriverStatement:
    """A statement built with SQLAlchemy Core and compiled once, at import, to the SQL text asyncpg runs.

    The hot statements (a contact by id, `/updates` pages, an API client, a contact's write, the sync
    queue's upsert) go straight to the asyncpg connection with it. Parameters get the same conversions
    SQLAlchemy would apply; bound values fixed in the statement (`retry = 0`) are filled in.
    """

    __slots__ = ("_converters", "_fixed", "_parameter_names", "sql", "statement")

    def __init__(self, statement: AnySelect | Insert | Update | Delete) -> None:
        compiled = statement.compile(dialect=_DRIVER_DIALECT)
        self.statement = statement
        self.sql = compiled.string
        self._parameter_names = tuple(compiled.positiontup or ())
        converters: list[Callable[[Any], Any] | None] = []
        fixed: dict[str, Any] = {}
        for name in self._parameter_names:
            processor = compiled._bind_processors.get(name)
            if processor is not None and not callable(processor):  # tuple-valued parameters
                raise ValueError(f"unsupported parameter {name!r} in a DriverStatement")
            bind = compiled.binds[name]
            converter = _array_converter(bind.type) if isinstance(bind.type, ARRAY) else processor
            converters.append(converter)
            if not bind.required and not callable(bind.value):
                fixed[name] = bind.value
        self._converters = tuple(converters)
        self._fixed = fixed

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional arguments of `sql` from named parameters."""
        fixed = self._fixed
        return [
            (parameters[name] if name in parameters else fixed[name])
            if convert is None
            else convert(parameters[name] if name in parameters else fixed[name])
            for name, convert in zip(self._parameter_names, self._converters, strict=True)
        ]


def _array_converter(array_type: ARRAY[Any]) -> Callable[[Any], Any] | None:
    """The conversion of a one-dimensional array parameter: its items' own conversion, if they have one.

    SQLAlchemy's array processor walks every item through its generic multi-dimension code even when the
    items need no conversion; for the write statements' 36 arrays that was a tenth of a POST's CPU.
    """
    if array_type.dimensions not in (None, 1):
        raise ValueError("multi-dimensional arrays are not supported in a DriverStatement")
    convert_item = array_type.item_type.dialect_impl(_DRIVER_DIALECT).bind_processor(
        _DRIVER_DIALECT
    )
    if convert_item is None:
        return None  # asyncpg encodes the list (or tuple) as it is

    def convert(values: Sequence[Any] | None) -> list[Any] | None:
        return None if values is None else [convert_item(value) for value in values]

    return convert


def column_array(column_type: Any) -> ARRAY[Any]:
    """The type of a bound array of a column's values, without the column's length: an explicit cast
    to `varchar(n)[]` would silently truncate a longer value, where the insert itself rejects it."""
    if isinstance(column_type, String) and column_type.length:
        column_type = String()
    return ARRAY(column_type)


def unnested_rows(prefix: str, columns: Mapping[str, Any]) -> Any:
    """`unnest(:<prefix>__<name>, ...) AS item(<name>, ...)`: rows given as one bound array per column
    (`column_array` of each column type), the form of every mergeable write part."""
    arrays = [
        bindparam(f"{prefix}__{name}", type_=column_array(column_type))
        for name, column_type in columns.items()
    ]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="item")


def _as_sqlalchemy_error(error: Exception, statement: str) -> Exception:
    """An asyncpg error as SQLAlchemy would have raised it, so the adapters' error mapping (unique
    violations, write conflicts, unavailability) reads driver errors and SQLAlchemy errors alike."""
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return error  # not a server error (connection lost, bad argument): mapped by what it is
    if sqlstate.startswith(_INTEGRITY_CLASS):
        return exc.IntegrityError(statement, None, error)
    return exc.DBAPIError(statement, None, error)


def _invalidated() -> DatabaseUnavailableError:
    # SQLAlchemy invalidates a connection when a statement found it broken: the database is out of reach.
    return DatabaseUnavailableError("the connection of this unit of work was invalidated")


def _driver_of(connection: AsyncConnection) -> Any:
    """The asyncpg connection under a checked-out SQLAlchemy one, None once SQLAlchemy invalidated it."""
    synchronous = connection.sync_connection
    if synchronous is None or synchronous.invalidated:
        return None
    # A plain attribute of a checked-out connection (`get_raw_connection()` would cost a greenlet
    # switch for the same object).
    return synchronous.connection.driver_connection


class TransactionScope:
    """The connection of one unit of work, checked out of the pool on its first statement, and its
    transaction, begun only when a statement needs it.

    `begin()` opens the transaction for a statement that must be part of it (a write); `lock()` for a
    read that locks rows. `atomic()` wraps a group of writes that must all happen or leave no trace:
    inside a transaction that already holds work it uses a SAVEPOINT, so the work survives a failed
    group; when the transaction holds no work yet — nothing, or only row locks — it needs none (two
    round trips saved): rolling back the whole transaction loses nothing but the group and the locks,
    and a use case whose group failed ends there. Any other statement runs in autocommit until the
    transaction is open, and inside it after.

    `before_statement`, when set, runs before each statement: the unit of work sends its pending writes
    there, so a unit reads its own writes (`PendingWrites`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: Any = None  # the asyncpg connection, while a transaction is open on it
        self._holds_work = False
        self.before_statement: Callable[[], Awaitable[None]] | None = None

    @property
    def in_transaction(self) -> bool:
        return self._transaction is not None

    async def settle(self) -> None:
        """Run `before_statement`: what follows sees the unit's own writes."""
        if self.before_statement is not None:
            await self.before_statement()

    async def connection(self) -> AsyncConnection:
        """The unit's SQLAlchemy connection, checked out of the pool on first use. A transaction the
        connection's previous user left open (none should: `close` rolls back, and a connection that could
        not is invalidated) is rolled back first; checking costs no round trip."""
        if self._connection is None:
            self._connection = await self._engine.connect()
            driver = self._driver()
            if driver is not None and driver.is_in_transaction():
                await self._statement(driver, "ROLLBACK")
        return self._connection

    async def run(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        """A SQLAlchemy statement (one that does not take the driver's fast path) on the unit's
        connection; it joins the transaction if one is open."""
        await self.settle()
        connection = await self.connection()
        return await connection.execute(statement, parameters)

    async def close(self, error: BaseException | None) -> None:
        """Return the connection to the pool, rolling back what was not committed (SQLAlchemy's checkin
        would not: the transaction is the driver's). `error` is what ended the unit of work, if
        anything: after an error saying the database is out of reach, or when the ROLLBACK itself fails
        or is cancelled, the connection is invalidated instead of going back to the pool."""
        connection, self._connection = self._connection, None
        if connection is None:
            self._transaction, self._holds_work = None, False
            return
        try:
            if error is not None and (
                isinstance(error, DatabaseUnavailableError) or is_unavailability(error)
            ):
                await self._discard(connection)
            else:
                try:
                    await self.rollback()
                except BaseException:  # cancellation included: the ROLLBACK may not have run
                    await self._discard(connection)
                    if error is None:
                        raise
        finally:
            await connection.close()

    async def _discard(self, connection: AsyncConnection) -> None:
        """Invalidate `connection` so the pool opens a new one in its place. Its socket is closed at
        once: a connection whose statement timed out may be waiting for an answer that never comes, and
        SQLAlchemy's own invalidation would first try a polite close, waiting for the server."""
        driver = _driver_of(connection)
        if driver is not None:
            driver.terminate()
        await connection.invalidate()

    async def rows(
        self, read: DriverStatement, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of `read`, fetched on the asyncpg connection itself."""
        await self.settle()
        if self._transaction is not None:
            return await self.execute(read, parameters)
        await self.connection()
        driver = self._driver()
        if driver is not None:
            try:
                records: Sequence[Sequence[Any]] = await driver.fetch(
                    read.sql, *read.arguments(parameters)
                )
            except Exception as error:
                if isinstance(error, TimeoutError):
                    raise  # the database does not answer: asking again would only wait as long again
                # Outside a transaction reads are idempotent: run it again through SQLAlchemy, which
                # raises its own error types and, on a broken connection, invalidates the pool so the
                # next unit reconnects.
            else:
                return records
        result = await self.run(read.statement, parameters)
        rows: Sequence[Sequence[Any]] = result.all()
        return rows

    async def execute(
        self, statement: DriverStatement, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        """Run `statement` and return its rows: inside the transaction once `begin`, `lock` or `atomic`
        opened it, else on its own in autocommit (a single statement is atomic by itself). Database
        errors are raised as SQLAlchemy's."""
        await self.settle()
        await self.connection()
        driver = self._driver()
        if driver is None:
            raise _invalidated()
        try:
            records: Sequence[Sequence[Any]] = await driver.fetch(
                statement.sql, *statement.arguments(parameters)
            )
        except Exception as error:
            raise _as_sqlalchemy_error(error, statement.sql) from error
        return records

    def _driver(self) -> Any:
        """The asyncpg connection under SQLAlchemy's (checked out), None once SQLAlchemy has
        invalidated it."""
        return None if self._connection is None else _driver_of(self._connection)

    async def begin(self) -> None:
        """Make the following statements part of the transaction (opening it if needed)."""
        await self.settle()
        await self._open()
        self._holds_work = True

    async def lock(self) -> None:
        """Make the following row-locking read part of the transaction (opening it if needed)."""
        await self.settle()
        await self._open()

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        await self.settle()
        await self._open()
        if not self._holds_work:
            try:
                yield
            except BaseException:
                await self.rollback()
                raise
        else:
            driver = self._transaction
            await self._statement(driver, f"SAVEPOINT {_SAVEPOINT}")
            try:
                yield
            except BaseException:
                await self._statement(driver, f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                raise
            await self._statement(driver, f"RELEASE SAVEPOINT {_SAVEPOINT}")
        self._holds_work = True

    async def commit(self) -> None:
        driver, self._transaction, self._holds_work = self._transaction, None, False
        if driver is not None:
            await self._statement(driver, "COMMIT")

    async def rollback(self) -> None:
        """Roll back what was not committed (nothing when no transaction is open); the unit of work
        calls it before returning the connection to the pool, since SQLAlchemy does not know about the
        driver's transaction."""
        driver, self._transaction, self._holds_work = self._transaction, None, False
        if driver is not None:
            await self._statement(driver, "ROLLBACK")

    async def _open(self) -> None:
        if self._transaction is None:
            await self.connection()
            driver = self._driver()
            await self._statement(driver, BEGIN_TRANSACTION)
            self._transaction = driver

    @staticmethod
    async def _statement(driver: Any, sql: str) -> None:
        if driver is None:
            raise _invalidated()
        try:
            await driver.execute(sql)
        except Exception as error:
            raise _as_sqlalchemy_error(error, sql) from error
