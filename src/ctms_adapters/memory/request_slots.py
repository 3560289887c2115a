"""`RequestSlots` within one process: an asyncio semaphore, for tests and single-process embedding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["InMemoryRequestSlots"]


class InMemoryRequestSlots:
    """At most `limit` holders at once, in this event loop; `max_held` is the most ever held at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a request-slot limit must be at least 1")
        self.limit = limit
        self.held = 0
        self.max_held = 0
        self._semaphore = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        async with self._semaphore:
            self.held += 1
            self.max_held = max(self.max_held, self.held)
            try:
                yield
            finally:
                self.held -= 1
