"""What the platform endpoints ask of the storage."""

from __future__ import annotations

from typing import Protocol


class DatabaseHealth(Protocol):
    async def ping(self) -> None:
        """One round trip to the database; raises when it cannot be reached."""
        ...

    async def estimate_contact_count(self) -> int:
        """A cheap, never negative estimate of the number of contacts (docs/contract.md §10)."""
        ...
