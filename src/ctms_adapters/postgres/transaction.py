"""The connection of one unit of work, with its transaction begun only when a write needs it.

Reads run on the connection in autocommit mode: a unit of work that only reads (GET by id, lookups,
`/updates`) then costs one round trip per query instead of `BEGIN` + query + `ROLLBACK`. Under READ
COMMITTED — the isolation every unit of work uses — each statement sees its own snapshot whether or not
it runs inside a transaction, so reading before `BEGIN` observes exactly what it would have observed
after it; writes, and reads that lock rows, run inside the transaction — except a unit's only write,
which is one statement and atomic by itself in autocommit (`defer`), guarded when it is an optimistic
save (`Guard`). See ADR 0002, ADR 0003 and ADR 0004.

The transaction is the asyncpg connection's own (`BEGIN_TRANSACTION` … `COMMIT`), not SQLAlchemy's: the
engine's connections stay in autocommit as far as SQLAlchemy knows, so statements it executes join the
transaction without it sending BEGIN itself. The hot statements (`DriverStatement`) go
to asyncpg directly: SQLAlchemy's execution layer costs three times the CPU asyncpg spends on a statement
(measured 0.15 vs 0.05 ms), and as much again for BEGIN and COMMIT. The unit of work closes the scope
before the connection returns to the pool, rolling back whatever was not committed.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sqlalchemy import (
    ARRAY,
    Delete,
    Insert,
    Select,
    String,
    Update,
    bindparam,
    column,
    exc,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable

from ctms_adapters.postgres.unavailable import DatabaseUnavailableError, is_unavailability

if TYPE_CHECKING:
    from ctms_adapters.postgres.coalescing import KeyedRead, ReadCoalescer, WriteCoalescer

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


# The parts a deferred write is made of, by name (`register_write_parts`): data-modifying statements that
# become the CTEs of one statement when the writes of a unit of work go out together.
_WRITE_PARTS: dict[str, Insert | Update | Delete] = {}
# Guard parts (`register_guard_part`) and the parts whose rows they condition (`guarded=True`).
_GUARD_PARTS: set[str] = set()
_GUARDED_PARTS: set[str] = set()
# The CTE name of a statement's guard part, whose `key` column guarded parts read (`let_through`).
GUARDED_KEYS: Final = "guarded"


def register_write_parts(
    parts: Mapping[str, Insert | Update | Delete], *, guarded: bool = False
) -> None:
    """Make `parts` available to `DeferredWrite`s (each adapter registers its own at import).

    `guarded`: each part writes only the rows whose key the statement's guard part let through (its
    rows are filtered with `let_through`), so it can only go out with a guard part (see `Guard`)."""
    for name, part in parts.items():
        if name in _WRITE_PARTS:
            raise ValueError(f"write part {name!r} is registered twice")
        _WRITE_PARTS[name] = part
        if guarded:
            _GUARDED_PARTS.add(name)


def register_guard_part(name: str, part: Update) -> None:
    """Register a guard part: a conditional UPDATE returning the key of each row it changed as `key`
    (`RETURNING ... AS key`). The statement it goes out in returns those keys, and the guarded parts
    in it write only the rows of those keys."""
    register_write_parts({name: part})
    _GUARD_PARTS.add(name)


def let_through(key: ColumnElement[Any]) -> ColumnElement[bool]:
    """The condition on a guarded part's rows: their `key` is one the statement's guard part returned."""
    return key.in_(select(column("key")).select_from(table(GUARDED_KEYS)))


@functools.cache
def _table_of(part_name: str) -> str:
    return str(_WRITE_PARTS[part_name].table)


@functools.cache
def combined_write(parts: frozenset[str]) -> DriverStatement:
    """One statement running `parts` as CTEs, the guard part first (the others may read it), then in
    registration order: each combination of parts is one statement text, compiled once here and
    prepared once per connection by the database. It returns the keys the guard part let through, if
    it has one."""
    unknown = parts - _WRITE_PARTS.keys()
    if unknown:
        raise ValueError(f"unknown write parts: {sorted(unknown)}")
    guards = parts & _GUARD_PARTS
    if len(guards) > 1:
        raise ValueError(f"one guard part per statement, not {sorted(guards)}")
    if parts & _GUARDED_PARTS and not guards:
        raise ValueError(f"guarded parts without a guard: {sorted(parts & _GUARDED_PARTS)}")
    chosen = [part for name, part in _WRITE_PARTS.items() if name in parts - guards]
    ctes = [part.cte(f"write_{index}") for index, part in enumerate(chosen)]
    if not guards:
        return DriverStatement(select(literal_column("1")).add_cte(*ctes))
    (guard,) = guards
    guard_cte = _WRITE_PARTS[guard].cte(GUARDED_KEYS)
    return DriverStatement(select(guard_cte.c.key).add_cte(guard_cte, *ctes))


class Guard(NamedTuple):
    """What a write holding a guard part expects: that the guard lets `key` through. When it does not
    (the row changed since the unit read it), none of the unit's guarded rows was written, and the
    call that sent the write raises `refused()`."""

    key: Any
    refused: Callable[[], BaseException]


class DeferredWrite(NamedTuple):
    """A write the unit of work sends with its next statement-worth of writes, not at once: `parts`
    (registered names) with their `parameters`. `explain_failure` turns the integrity error of the
    statement it went out in into the error its caller is owed (a unique violation naming fields).

    `mergeable`: every parameter is a column array with one entry per row, so the same parts written by
    other units concatenate with these into one statement (`WriteCoalescer`).

    `guard`: set when `parts` hold a guard part, what that guard must let through."""

    parts: frozenset[str]
    parameters: Mapping[str, Any]
    explain_failure: Callable[[exc.IntegrityError], Awaitable[BaseException]] | None = None
    mergeable: bool = False
    guard: Guard | None = None


class TransactionScope:
    """The connection of one unit of work, checked out of the pool on its first statement, and whether
    its transaction has begun and already holds work.

    `begin()` opens the transaction for a statement that must be part of it (a write); `lock()` for a
    read that locks rows. `atomic()` wraps a group of writes that must all happen or leave no trace (one
    `add`/`save`): inside a transaction that already holds work it uses a SAVEPOINT, so the work survives
    a failed group; when the transaction holds no work yet — nothing, or only row locks — it needs none
    (two round trips saved): rolling back the whole transaction loses nothing but the group and the
    locks, and a use case whose group failed ends there.

    `keyed_rows()` outside a transaction goes to the `ReadCoalescer`, which serves concurrent reads of
    many units of work with one statement on a connection of its own: a unit of work that only reads a
    contact then never checks a connection out at all.

    `defer()` holds a write back instead of sending it: the deferred writes of a unit go out as one
    statement (their parts as CTEs) just before its next statement of any other kind, or at `commit()`.
    A unit whose only writes are deferred (`POST /ctms`: the contact and its Acoustic queue entry) then
    commits with that one statement in autocommit — atomic by itself — instead of `BEGIN`, two writes and
    `COMMIT`; with a `WriteCoalescer`, concurrent units of that kind share the statement. Writes join
    only while they touch tables the held ones do not (every part of a statement sees the same
    snapshot, not each other's effects); otherwise the held ones go out first. An error of a deferred
    write therefore surfaces from the call that sent it (usually `commit()`), explained by the write's
    own `explain_failure`.

    A write may be *guarded* (`Guard`, optimistic concurrency): its guard part updates a row only if it
    is still the version the unit read, and the unit's parts deferred with and after it are guarded
    parts, which write only the rows of keys the guard let through. When the guard refuses, the
    statement writes nothing of the unit and the call that sent it raises the guard's error; the unit
    can start over from a fresh read. Such a unit commits in one statement too, shared with others'.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        coalescer: ReadCoalescer | None = None,
        write_coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._engine = engine
        self._coalescer = coalescer
        self._write_coalescer = write_coalescer
        self._connection: AsyncConnection | None = None
        self._transaction: Any = None  # the asyncpg connection, while a transaction is open on it
        self._holds_work = False
        self._deferred: list[DeferredWrite] = []

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
        await self._send_deferred()
        connection = await self.connection()
        return await connection.execute(statement, parameters)

    async def keyed_rows(self, read: KeyedRead, key: Any) -> list[Sequence[Any]]:
        """The rows `read` finds for `key`: through the coalescer outside a transaction, else (and
        without a coalescer) on the unit's own connection, inside its transaction."""
        await self._send_deferred()  # the unit reads its own writes
        if self._transaction is None and self._coalescer is not None:
            return await self._coalescer.rows(read, key)
        (rows,) = await read.rows_of(self, [key])
        return rows

    async def close(self, error: BaseException | None) -> None:
        """Return the connection to the pool, rolling back what was not committed (SQLAlchemy's checkin
        would not: the transaction is the driver's) and dropping deferred writes never sent. `error` is
        what ended the unit of work, if anything: after an error saying the database is out of reach, or
        when the ROLLBACK itself fails or is cancelled, the connection is invalidated instead of going
        back to the pool."""
        connection, self._connection = self._connection, None
        self._deferred.clear()
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
        await self._send_deferred()
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
        await self._send_deferred()
        await self.connection()
        return await self._fetch(self._driver(), statement, parameters)

    async def _fetch(
        self, driver: Any, statement: DriverStatement, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
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
        await self._send_deferred()
        await self._open()
        self._holds_work = True

    async def lock(self) -> None:
        """Make the following row-locking read part of the transaction (opening it if needed)."""
        await self._send_deferred()
        await self._open()

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        await self._send_deferred()
        async with self._atomic():
            yield

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[None]:
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

    async def defer(self, write: DeferredWrite) -> None:
        """Hold `write` back until the unit's next statement of another kind, or its commit."""
        if self._deferred and not self._joins_deferred(write):
            await self._send_deferred()
        self._deferred.append(write)

    def guarding(self) -> bool:
        """Whether the unit holds a write with a guard part: a write deferred now joins it only if its
        parts are guarded ones (`register_write_parts(guarded=True)`), applied only where the guard
        let its key through."""
        return any(write.parts & _GUARD_PARTS for write in self._deferred)

    def _joins_deferred(self, write: DeferredWrite) -> bool:
        # A guard conditions only what comes with and after it, so it joins nothing held; once one is
        # held, only guarded parts join it (anything else would be written whatever the guard says).
        if write.parts & _GUARD_PARTS or self.guarding() != (write.parts <= _GUARDED_PARTS):
            return False
        tables = {_table_of(name) for name in write.parts}
        for held in self._deferred:
            if tables & {_table_of(name) for name in held.parts}:
                return False
            shared = held.parameters.keys() & write.parameters.keys()
            if any(held.parameters[name] != write.parameters[name] for name in shared):
                return False
        return True

    async def _send_deferred(self, *, last: bool = False) -> None:
        """Send the deferred writes as one statement: alone in autocommit when it is the `last` of a
        unit that has no transaction (atomic by itself), else inside the transaction, opening it. A
        guard that refused its key is raised as the guard's error, after the statement."""
        if not self._deferred:
            return
        writes, self._deferred = self._deferred, []
        parts: frozenset[str] = frozenset().union(*(write.parts for write in writes))
        parameters = {name: value for write in writes for name, value in write.parameters.items()}
        guard = next((write.guard for write in writes if write.guard is not None), None)
        try:
            if not last or self._transaction is not None:
                async with self._atomic():
                    rows = await self._fetch(self._transaction, combined_write(parts), parameters)
                passed = frozenset(row[0] for row in rows)
            elif self._write_coalescer is not None and all(write.mergeable for write in writes):
                passed = await self._write_coalescer.write(
                    parts, parameters, None if guard is None else guard.key
                )
            else:
                await self.connection()
                rows = await self._fetch(self._driver(), combined_write(parts), parameters)
                passed = frozenset(row[0] for row in rows)
        except exc.IntegrityError as error:
            for write in writes:
                if write.explain_failure is not None:
                    raise await write.explain_failure(error) from None
            raise
        if guard is not None and guard.key not in passed:
            raise guard.refused()

    async def commit(self) -> None:
        await self._send_deferred(last=True)
        driver, self._transaction, self._holds_work = self._transaction, None, False
        if driver is not None:
            await self._statement(driver, "COMMIT")

    async def rollback(self) -> None:
        """Roll back what was not committed (nothing when no transaction is open); the unit of work
        calls it before returning the connection to the pool, since SQLAlchemy does not know about the
        driver's transaction."""
        self._deferred.clear()
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
