"""Concurrent units of work sharing statements: contact reads outside a transaction, and single-statement
writes (sign-ups, optimistic changes).

Under load many requests read a contact at the same moment (`GET /ctms/{email_id}`, `GET
/ctms?primary_email=`, a PATCH's unlocked read), and many sign up or change a contact (`POST /ctms` and
PATCH: one statement in autocommit, the contact write and its Acoustic queue entry). Each used to check a
connection out of the pool and run a statement of its own; the API spent more CPU on that round trip
than on everything else the request did. A `StatementBatcher` sends the requests that arrive while its
statement is in flight together as the next statement, on a pooled connection it holds while requests
keep coming. A request alone is sent at once, so an idle service answers as fast as before; a busy one
makes one round trip per batch instead of one per request.

Consistency is unchanged: a request always goes out in a statement *sent after* it was made (never in
one already in flight), and under READ COMMITTED each statement sees everything committed before it
began — what the request's own statement would have seen. Reads inside a transaction (a PUT's read
after its row lock) never come here: they run on the transaction's connection. Each unit's write stays
atomic (its rows are all in the one statement, a guarded one's all or none), and its call returns once
they are committed.

One request's failure does not fail the others: when a batch fails for anything but an unavailable
database, each of its requests is sent again on its own, so only the one at fault gets the error (a key
the database rejects, a unique identifier taken, two sign-ups with one `email_id`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, NamedTuple, TypeVar

from sqlalchemy import Select

from ctms_adapters.postgres.contact_write import statement_for
from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope
from ctms_adapters.postgres.unavailable import is_unavailability

Request = TypeVar("Request")
Result = TypeVar("Result")

# Keys per read statement: a batch stays a handful of index probes, and a burst is served by several.
MAX_KEYS_PER_STATEMENT: Final = 100
# Units per write statement: small enough to retry one by one when one of them fails.
MAX_UNITS_PER_STATEMENT: Final = 50

# Runs one statement for a batch of requests and returns their results, in the requests' order.
BatchStatement = Callable[[TransactionScope, list[Request]], Awaitable[Sequence[Result]]]
# A new connection holder (`TransactionScope` without a transaction): the batcher's, until it is invalidated.
Connect = Callable[[], TransactionScope]


class StatementBatcher(Generic[Request, Result]):
    """Sends the requests made while a statement is in flight as the next statement (`run`), at most
    `limit` per statement, on a pooled connection (`connect`) a drain task holds until nobody waits."""

    def __init__(
        self, connect: Connect, run: BatchStatement[Request, Result], *, limit: int
    ) -> None:
        self._connect = connect
        self._run = run
        self._limit = limit
        self._waiting: list[tuple[Request, asyncio.Future[Result]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, request: Request) -> Result:
        """The result of `request`, from a statement sent after this call; database errors are
        raised as the statement raised them."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_waiting(), name=f"batch {self._run}")
        return await future

    async def _drain_waiting(self) -> None:
        scope = self._connect()
        error: BaseException | None = None
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                failure = await self._serve(batch, scope)
                if failure is not None and is_unavailability(failure):
                    await scope.close(failure)  # invalidated: the next batch reconnects
                    scope = self._connect()
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._drain = None
            # Only a cancelled drain (the event loop shutting down) leaves requests behind.
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            await scope.close(error)

    async def _serve(
        self, batch: list[tuple[Request, asyncio.Future[Result]]], scope: TransactionScope
    ) -> Exception | None:
        """Settle every request of `batch` with its result or the statement's error (returned too)."""
        try:
            results = await self._run(scope, [request for request, _ in batch])
        except Exception as error:
            if len(batch) > 1 and not is_unavailability(error):
                for waiting in batch:  # find the request at fault
                    await self._serve([waiting], scope)
                return None
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return error
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a request that gave up (its caller was cancelled)
                future.set_result(result)
        return None


# --- reads ----------------------------------------------------------------------------------------------


class KeyedRead:
    """A read by key whose statement takes the keys as the array parameter `keys` and returns rows that
    start with the key exactly as it was passed: `(key, value, ...)`, none, one or several per key."""

    KEYS: ClassVar[str] = "keys"

    __slots__ = ("name", "statement")

    def __init__(self, name: str, statement: Select[Any]) -> None:
        self.name = name
        self.statement = DriverStatement(statement)

    def __repr__(self) -> str:
        return f"KeyedRead({self.name!r})"

    async def rows_of(self, scope: TransactionScope, keys: list[Any]) -> list[list[Sequence[Any]]]:
        """The rows of each of `keys` (a key asked twice is read once)."""
        found: dict[Any, list[Sequence[Any]]] = {key: [] for key in keys}
        for row in await scope.rows(self.statement, {self.KEYS: list(found)}):
            found[row[0]].append(row)
        return [found[key] for key in keys]


class ReadCoalescer:
    """Serves the `KeyedRead`s of concurrent units of work: one `StatementBatcher` per kind of read."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._batchers: dict[KeyedRead, StatementBatcher[Any, list[Sequence[Any]]]] = {}

    async def rows(self, read: KeyedRead, key: Any) -> list[Sequence[Any]]:
        """The rows `read` finds for `key`, from a statement sent after this call."""
        batcher = self._batchers.get(read)
        if batcher is None:
            batcher = self._batchers[read] = StatementBatcher(
                self._connect, read.rows_of, limit=MAX_KEYS_PER_STATEMENT
            )
        return await batcher.submit(key)


# --- single-statement writes --------------------------------------------------------------------------


class Write(NamedTuple):
    """A unit's single-statement write: its steps (`contact_write.STEPS`), their column arrays, and the
    key its guard must let through (None without a guard)."""

    steps: frozenset[str]
    columns: Mapping[str, list[Any]]
    guarded_key: Any = None


_NOTHING_PASSED: Final[frozenset[Any]] = frozenset()


async def _write_together(scope: TransactionScope, writes: list[Write]) -> list[frozenset[Any]]:
    """One statement of every write's steps, their column arrays concatenated (a write without a step
    adds no rows to it); each write gets the keys the statement's guard let through.

    Two guarded writes of one key cannot share a statement (both would pass the guard, which updates the
    row once): the later one is refused without being sent, as it would have been in the next statement
    (the first one's write changes the row it expects). Guarded writes go in key order, so concurrent
    statements lock their rows in the same order."""
    refused: set[int] = set()
    guarded_keys: set[Any] = set()
    for index, write in enumerate(writes):
        if write.guarded_key in guarded_keys:
            refused.add(index)
        elif write.guarded_key is not None:
            guarded_keys.add(write.guarded_key)
    sent = sorted(
        (write for index, write in enumerate(writes) if index not in refused),
        key=lambda write: (write.guarded_key is not None, str(write.guarded_key)),
    )
    parameters: dict[str, list[Any]] = {}
    for write in sent:
        for name, values in write.columns.items():
            parameters.setdefault(name, []).extend(values)
    rows = await scope.execute(
        statement_for(frozenset().union(*(write.steps for write in sent))), parameters
    )
    passed = frozenset(row[0] for row in rows) if guarded_keys else _NOTHING_PASSED
    return [_NOTHING_PASSED if index in refused else passed for index in range(len(writes))]


class WriteCoalescer:
    """Commits the single-statement writes of concurrent units of work (`PendingWrites`), one statement
    per batch."""

    def __init__(self, connect: Connect) -> None:
        self._batcher: StatementBatcher[Write, frozenset[Any]] = StatementBatcher(
            connect, _write_together, limit=MAX_UNITS_PER_STATEMENT
        )

    async def write(
        self, steps: frozenset[str], parameters: Mapping[str, list[Any]], guarded_key: Any = None
    ) -> frozenset[Any]:
        """Commit `steps` with their column arrays, in a statement sent after this call, and return the
        keys its guard let through (`guarded_key` among them if the guard passed this write); database
        errors are raised as SQLAlchemy's."""
        return await self._batcher.submit(Write(steps, parameters, guarded_key))
