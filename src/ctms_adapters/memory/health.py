"""Health of the in-memory store: always reachable."""

from __future__ import annotations

from ctms_adapters.memory.store import InMemoryStore


class InMemoryDatabaseHealth:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.up = True  # tests flip it to simulate an outage

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionError("in-memory database marked down")

    async def estimate_contact_count(self) -> int:
        return len(self._store.contacts)
