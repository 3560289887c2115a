"""The contact selections of `ctms acoustic resync`, `ctms acoustic dump` and `ctms braze resync`
(docs/acoustic.md, "Commands"): which contacts a newsletter or waitlist holds, every contact, and the retry reset."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

__all__ = ["ResyncSelection"]


class ResyncSelection(Protocol):
    async def subscribed_to(self, newsletter: str) -> list[uuid.UUID]:
        """The contacts subscribed to `newsletter` (its exact slug)."""
        ...

    async def on_waitlist(self, waitlist: str) -> list[uuid.UUID]:
        """The contacts with a `waitlist` entry, subscribed or not (as v3.3)."""
        ...

    async def every_contact(
        self, *, after: uuid.UUID | None = None, limit: int | None = None
    ) -> list[uuid.UUID]:
        """Every contact, in `email_id` order; with `after` and `limit`, a page of a walk through them
        (the next `limit` ids after `after`), so millions never sit in memory at once."""
        ...

    async def reset_retries(self, now: datetime) -> int:
        """Every queued contact with a retry counted gets its retries back (retry 0, due `now`);
        the last error stays. How many."""
        ...
