"""Concurrent single-statement units of work (sign-ups) committed by one statement.

A `POST /ctms` unit holds one write — the new contact and its Acoustic queue entry, one statement in
autocommit (`TransactionScope.defer`). Under load many arrive together, and each paid a pool checkout and
a statement of its own. Their parts are written from column arrays (`DeferredWrite.mergeable`), so the
writes of several units concatenate: `WriteCoalescer` sends the ones that arrive while a statement is in
flight as the next statement, as `ReadCoalescer` does for reads. A lone write goes out at once.

Each unit stays atomic: its rows are all in the one statement, which commits or fails as a whole. When a
batch fails for anything but an unavailable database (a unique identifier taken, two units queueing the
same contact), each of its units is written again on its own, so only the unit at fault gets the error
— and explains it to its caller as before. Every unit's call returns once its rows are committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.transaction import TransactionScope, combined_write
from ctms_adapters.postgres.unavailable import is_unavailability

# Units per statement: a batch stays small enough to retry unit by unit when one of them fails.
MAX_UNITS_PER_STATEMENT: Final = 50


class _Pending(NamedTuple):
    parts: frozenset[str]
    parameters: Mapping[str, list[Any]]
    done: asyncio.Future[None]


class WriteCoalescer:
    """Writes the mergeable single-statement units of concurrent units of work, one statement per
    batch, on a pooled connection held while units wait."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[_Pending] = []
        self._drain: asyncio.Task[None] | None = None

    async def write(self, parts: frozenset[str], parameters: Mapping[str, list[Any]]) -> None:
        """Commit `parts` with their column arrays, in a statement sent after this call; database
        errors are raised as SQLAlchemy's."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(parts, parameters, done))
        if self._drain is None:
            self._drain = asyncio.create_task(self._run(), name="coalesce writes")
        await done

    async def _run(self) -> None:
        scope = TransactionScope(self._engine)
        error: BaseException | None = None
        try:
            while self._waiting:
                batch = self._waiting[:MAX_UNITS_PER_STATEMENT]
                del self._waiting[:MAX_UNITS_PER_STATEMENT]
                failure = await self._serve(batch, scope)
                if failure is not None and is_unavailability(failure):
                    await scope.close(failure)  # invalidated: the next batch reconnects
                    scope = TransactionScope(self._engine)
        except BaseException as raised:
            error = raised
            raise
        finally:
            self._drain = None
            # Only a cancelled drain (the event loop shutting down) leaves units behind.
            for pending in self._waiting:
                pending.done.cancel()
            self._waiting.clear()
            await scope.close(error)

    async def _serve(self, batch: list[_Pending], scope: TransactionScope) -> Exception | None:
        """Write `batch` as one statement; settle every unit's call with the outcome (returned too)."""
        parameters: dict[str, list[Any]] = {}
        for pending in batch:
            for name, values in pending.parameters.items():
                parameters.setdefault(name, []).extend(values)
        statement = combined_write(frozenset().union(*(pending.parts for pending in batch)))
        try:
            await scope.execute(statement, parameters)
        except Exception as error:
            if len(batch) > 1 and not is_unavailability(error):
                for pending in batch:  # find the unit at fault
                    await self._serve([pending], scope)
                return None
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_exception(error)
            return error
        except BaseException:
            for pending in batch:
                pending.done.cancel()
            raise
        for pending in batch:
            if not pending.done.done():  # a unit that gave up (its request was cancelled)
                pending.done.set_result(None)
        return None
