"""Concurrent reads of contacts, outside any transaction, served by one statement.

Under load many requests read a contact at the same moment (`GET /ctms/{email_id}`, `GET
/ctms?primary_email=`). Each used to check a connection out of the pool, run its own statement and check
the connection back in; the API spent more CPU on that round trip than on everything else the request
did. `ReadCoalescer` gathers the keys that units of work ask for while a statement of the same kind is in
flight and then asks for all of them at once (`WHERE key = ANY(...)`, as a join on `unnest`), on a
connection of its own. A read alone is sent at once, so an idle service answers as fast as before; a
busy one makes one round trip per batch instead of one per request.

Consistency is unchanged: a reader's keys always go out in a statement *sent after* the reader asked
(never in one already in flight), and under READ COMMITTED each statement sees everything committed before
it began — what the reader's own statement would have seen. Reads inside a transaction (a PATCH's read
after its row lock) never come here: they run on the transaction's connection.

One key's failure does not fail the others: when a batch fails for anything but an unavailable database,
each of its keys is read again on its own, so only the readers of a key the database rejects get the
error.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Final

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope
from ctms_adapters.postgres.unavailable import is_unavailability

# Keys per statement: a batch stays a handful of index probes, and a burst is served by several.
MAX_KEYS_PER_STATEMENT: Final = 100


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


_Waiters = dict[Any, list["asyncio.Future[list[Any]]"]]


class ReadCoalescer:
    """Serves `KeyedRead`s of concurrent units of work, one statement per batch of keys.

    One drain task per kind of read runs while readers wait: it takes every key asked for so far (up to
    `MAX_KEYS_PER_STATEMENT`), runs the statement on a pooled connection it holds until it ends, hands
    each reader its values, and starts over with the keys that arrived meanwhile; it ends, returning the
    connection, when nobody waits.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: dict[KeyedRead, _Waiters] = {}
        self._drains: dict[KeyedRead, asyncio.Task[None]] = {}

    async def values(self, read: KeyedRead, key: Any) -> list[Any]:
        """The values `read` finds for `key`, from a statement sent after this call."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(read, {}).setdefault(key, []).append(future)
        if read not in self._drains:
            self._drains[read] = asyncio.create_task(self._drain(read), name=f"coalesce {read}")
        return await future

    async def _drain(self, read: KeyedRead) -> None:
        # One pooled connection for the whole drain: under load it serves batch after batch without
        # going back to the pool in between.
        scope = TransactionScope(self._engine)
        error: BaseException | None = None
        try:
            while waiting := self._waiting.pop(read, None):
                keys = list(waiting)
                if len(keys) > MAX_KEYS_PER_STATEMENT:
                    self._waiting[read] = {
                        key: waiting.pop(key) for key in keys[MAX_KEYS_PER_STATEMENT:]
                    }
                failure = await self._serve(read, waiting, scope)
                if failure is not None and is_unavailability(failure):
                    await scope.close(failure)  # invalidated: the next batch reconnects
                    scope = TransactionScope(self._engine)
        except BaseException as raised:
            error = raised
            raise
        finally:
            del self._drains[read]
            # Only a cancelled drain (the event loop shutting down) leaves readers behind.
            for futures in self._waiting.pop(read, {}).values():
                _cancel(futures)
            await scope.close(error)

    async def _serve(
        self, read: KeyedRead, waiting: _Waiters, scope: TransactionScope
    ) -> Exception | None:
        """Hand every reader in `waiting` its values, or the error of the statement (returned too)."""
        try:
            rows = await scope.rows(read.statement, {KeyedRead.KEYS: list(waiting)})
        except Exception as error:
            if len(waiting) > 1 and not is_unavailability(error):
                for key, futures in waiting.items():  # find the key at fault
                    await self._serve(read, {key: futures}, scope)
                return None
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return error
        except BaseException:
            for futures in waiting.values():
                _cancel(futures)
            raise
        found: dict[Any, list[Any]] = {key: [] for key in waiting}
        for key, value in rows:
            found[key].append(value)
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():  # a reader that gave up (its request was cancelled)
                    future.set_result(found[key])
        return None


def _cancel(futures: list[asyncio.Future[list[Any]]]) -> None:
    for future in futures:
        future.cancel()
