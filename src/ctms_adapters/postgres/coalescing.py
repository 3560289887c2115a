"""Concurrent units of work sharing statements: contact reads outside a transaction, and sign-ups.

Under load many requests read a contact at the same moment (`GET /ctms/{email_id}`, `GET
/ctms?primary_email=`), and many sign up (`POST /ctms`: one statement in autocommit, the new contact and
its Acoustic queue entry). Each used to check a connection out of the pool and run a statement of its own;
the API spent more CPU on that round trip than on everything else the request did. A `StatementBatcher`
sends the requests that arrive while its statement is in flight together as the next statement, on a
pooled connection it holds while requests keep coming. A request alone is sent at once, so an idle
service answers as fast as before; a busy one makes one round trip per batch instead of one per request.

Consistency is unchanged: a request always goes out in a statement *sent after* it was made (never in
one already in flight), and under READ COMMITTED each statement sees everything committed before it
began — what the request's own statement would have seen. Reads inside a transaction (a PATCH's read
after its row lock) never come here: they run on the transaction's connection. Each sign-up stays atomic
(its rows are all in the one statement), and its call returns once they are committed.

One request's failure does not fail the others: when a batch fails for anything but an unavailable
database, each of its requests is sent again on its own, so only the one at fault gets the error (a key
the database rejects, a unique identifier taken, two sign-ups with one `email_id`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope, combined_write
from ctms_adapters.postgres.unavailable import is_unavailability

Request = TypeVar("Request")
Result = TypeVar("Result")

# Keys per read statement: a batch stays a handful of index probes, and a burst is served by several.
MAX_KEYS_PER_STATEMENT: Final = 100
# Sign-ups per statement: small enough to retry one by one when one of them fails.
MAX_UNITS_PER_STATEMENT: Final = 50

# Runs one statement for a batch of requests and returns their results, in the requests' order.
BatchStatement = Callable[[TransactionScope, list[Request]], Awaitable[Sequence[Result]]]


class StatementBatcher(Generic[Request, Result]):
    """Sends the requests made while a statement is in flight as the next statement (`run`), at most
    `limit` per statement, on a pooled connection a drain task holds until nobody waits."""

    def __init__(
        self, engine: AsyncEngine, run: BatchStatement[Request, Result], *, limit: int
    ) -> None:
        self._engine = engine
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
        scope = TransactionScope(self._engine)
        error: BaseException | None = None
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                failure = await self._serve(batch, scope)
                if failure is not None and is_unavailability(failure):
                    await scope.close(failure)  # invalidated: the next batch reconnects
                    scope = TransactionScope(self._engine)
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
    """A read by key whose statement takes the keys as the array parameter `keys` and returns
    `(key, value)` rows, the key exactly as it was passed, for each value found (none, one or several
    per key)."""

    KEYS: ClassVar[str] = "keys"

    __slots__ = ("name", "statement")

    def __init__(self, name: str, statement: Select[Any]) -> None:
        self.name = name
        self.statement = DriverStatement(statement)

    def __repr__(self) -> str:
        return f"KeyedRead({self.name!r})"

    async def values_of(self, scope: TransactionScope, keys: list[Any]) -> list[list[Any]]:
        """The values of each of `keys` (a key asked twice is read once)."""
        found: dict[Any, list[Any]] = {key: [] for key in keys}
        for key, value in await scope.rows(self.statement, {self.KEYS: list(found)}):
            found[key].append(value)
        return [found[key] for key in keys]


class ReadCoalescer:
    """Serves the `KeyedRead`s of concurrent units of work: one `StatementBatcher` per kind of read."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._batchers: dict[KeyedRead, StatementBatcher[Any, list[Any]]] = {}

    async def values(self, read: KeyedRead, key: Any) -> list[Any]:
        """The values `read` finds for `key`, from a statement sent after this call."""
        batcher = self._batchers.get(read)
        if batcher is None:
            batcher = self._batchers[read] = StatementBatcher(
                self._engine, read.values_of, limit=MAX_KEYS_PER_STATEMENT
            )
        return await batcher.submit(key)


# --- sign-ups -------------------------------------------------------------------------------------------

Write = tuple[frozenset[str], Mapping[str, list[Any]]]


async def _write_together(scope: TransactionScope, writes: list[Write]) -> list[None]:
    """One statement of every write's parts, their column arrays concatenated (a write without a part
    adds no rows to it)."""
    parameters: dict[str, list[Any]] = {}
    for _, columns in writes:
        for name, values in columns.items():
            parameters.setdefault(name, []).extend(values)
    await scope.execute(
        combined_write(frozenset().union(*(parts for parts, _ in writes))), parameters
    )
    return [None] * len(writes)


class WriteCoalescer:
    """Commits the mergeable single-statement units of concurrent units of work (`DeferredWrite`), one
    statement per batch."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._batcher: StatementBatcher[Write, None] = StatementBatcher(
            engine, _write_together, limit=MAX_UNITS_PER_STATEMENT
        )

    async def write(self, parts: frozenset[str], parameters: Mapping[str, list[Any]]) -> None:
        """Commit `parts` with their column arrays, in a statement sent after this call; database
        errors are raised as SQLAlchemy's."""
        await self._batcher.submit((parts, parameters))
