"""`RequestSlots` on PostgreSQL: leased rows of `request_slots`, shared by every worker process.

A slot is a row (`name`, `slot`) whose `leased_until` is in the future. Taking one is a single UPDATE
of the first free row a `SELECT … FOR UPDATE SKIP LOCKED` picked (so concurrent processes never take
the same row and never wait for one another); giving it back clears the lease, if this acquisition
still holds it. A process that dies holding slots loses them when their lease ends: the lease must be
longer than any request can take (the composition root derives it from the request timeout).

Within a process, only one coroutine asks the database at a time, and while every slot is taken it
polls every `poll_s`, or as soon as this process gives a slot up. A slot a request is done with stays
with the process for its next request, without a round trip, as long as the process has held it for
less than `hand_over_s` and a request takes it within `linger_s`; otherwise it goes back to the table
(in the background: the request is not kept waiting), so every process gets its turn at the slots.
Every statement runs in autocommit: one round trip each.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["PostgresRequestSlots"]

logger = logging.getLogger("ctms.sync")

_SEED = text(
    "INSERT INTO request_slots (name, slot) SELECT :name, s FROM generate_series(0, :limit - 1) s "
    "ON CONFLICT DO NOTHING"
)
_TAKE = text(
    "UPDATE request_slots SET holder = :holder, "
    "leased_until = clock_timestamp() + make_interval(secs => :lease_s) "
    "WHERE name = :name AND slot = ("
    " SELECT slot FROM request_slots"
    " WHERE name = :name AND slot < :limit"
    " AND (leased_until IS NULL OR leased_until <= clock_timestamp())"
    " ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED"
    ") RETURNING slot"
)
_GIVE_BACK = text(
    "UPDATE request_slots SET holder = NULL, leased_until = NULL "
    "WHERE name = :name AND slot = :slot AND holder = :holder"
)


class _Held:
    __slots__ = ("holder", "idle_since", "slot", "taken_at")

    def __init__(self, slot: int, holder: str, taken_at: float) -> None:
        self.slot = slot
        self.holder = holder
        self.taken_at = taken_at
        self.idle_since = taken_at


class PostgresRequestSlots:
    """At most `limit` holders of `name` at once across every process sharing the database."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str,
        limit: int,
        lease: timedelta = timedelta(seconds=60),
        poll_s: float = 0.05,
        hand_over_s: float = 1.0,
        linger_s: float = 0.02,
    ) -> None:
        if limit < 1:
            raise ValueError("a request-slot limit must be at least 1")
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._name = name
        self._limit = limit
        self._lease_s = lease.total_seconds()
        self._poll_s = poll_s
        self._hand_over_s = min(hand_over_s, self._lease_s / 2)
        self._linger_s = linger_s
        self._process = f"{socket.gethostname()[:80]}:{os.getpid()}"
        self._acquisitions = itertools.count()
        self._local = asyncio.Semaphore(limit)
        self._polling = asyncio.Lock()
        self._given_back = asyncio.Event()
        self._idle: list[_Held] = []
        self._background: set[asyncio.Task[None]] = set()
        self._sweeping = False
        self._seeded = False

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        async with self._local:
            held = await self._obtain()
            try:
                yield
            finally:
                self._release(held)

    async def _obtain(self) -> _Held:
        if self._idle:
            return self._idle.pop()
        async with self._polling:
            holder = f"{self._process}:{next(self._acquisitions)}"
            while not self._idle:
                slot = await self._take(holder)
                if slot is not None:
                    now = time.monotonic()
                    return _Held(slot, holder, now)
            return self._idle.pop()

    async def close(self) -> None:
        """Give back every slot this process keeps idle, and wait for the give-backs under way."""
        idle, self._idle = self._idle, []
        for held in idle:
            await self._give_back(held.slot, held.holder)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _release(self, held: _Held) -> None:
        """Keep the slot for the next request of this process (it lingers `linger_s` at most), unless
        this process has had it for `hand_over_s`: then it goes back to the table."""
        now = time.monotonic()
        if now - held.taken_at < self._hand_over_s:
            held.idle_since = now
            self._idle.append(held)
            self._given_back.set()
            if not self._sweeping:
                self._sweeping = True
                self._in_background(self._sweep())
        else:
            self._in_background(self._give_back(held.slot, held.holder))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sweep(self) -> None:
        """Give back the slots no request of this process took within `linger_s`."""
        try:
            while self._idle:
                await asyncio.sleep(self._linger_s)
                now = time.monotonic()
                stale = [h for h in self._idle if now - h.idle_since >= self._linger_s]
                if stale:
                    self._idle = [h for h in self._idle if h not in stale]
                    for held in stale:
                        await self._give_back(held.slot, held.holder)
        finally:
            self._sweeping = False

    async def _take(self, holder: str) -> int | None:
        """A free slot of the table, waiting for one; None as soon as another request of this
        process gives one up instead."""
        parameters = {
            "name": self._name,
            "limit": self._limit,
            "holder": holder,
            "lease_s": self._lease_s,
        }
        while True:
            # A connection only for the statement: none is held while waiting.
            async with self._engine.connect() as connection:
                if not self._seeded:
                    await connection.execute(_SEED, {"name": self._name, "limit": self._limit})
                    self._seeded = True
                self._given_back.clear()
                slot = (await connection.execute(_TAKE, parameters)).scalar()
            if slot is not None:
                return int(slot)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._given_back.wait(), self._poll_s)
            if self._idle:
                return None

    async def _give_back(self, slot: int, holder: str) -> None:
        try:
            async with self._engine.connect() as connection:
                await connection.execute(
                    _GIVE_BACK, {"name": self._name, "slot": slot, "holder": holder}
                )
        except Exception:
            # The lease ends on its own: the slot is only unavailable a little longer.
            logger.exception("Could not give a request slot back; its lease will end it.")
        finally:
            self._given_back.set()
