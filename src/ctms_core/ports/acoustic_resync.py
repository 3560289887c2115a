"""The contact selections of `ctms acoustic resync`, `ctms acoustic dump` and `ctms braze resync`
(docs/acoustic.md, "Commands"): which contacts a newsletter or waitlist holds, every contact, and the retry reset."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

import msgspec

__all__ = ["ContactSelection", "ResyncSelection"]


class ContactSelection(msgspec.Struct, frozen=True):
    """The contacts a bulk command acts on: those subscribed to `newsletter` (its exact slug), those
    with a `waitlist` entry (subscribed or not, as v3.3), each contact once when both are given; with
    neither, every contact."""

    newsletter: str | None = None
    waitlist: str | None = None


class ResyncSelection(Protocol):
    async def contacts(
        self,
        selection: ContactSelection,
        *,
        after: uuid.UUID | None = None,
        limit: int | None = None,
    ) -> list[uuid.UUID]:
        """The selected contacts in `email_id` order; with `after` and `limit`, a page of a walk
        through them (the next `limit` ids after `after`), so millions never sit in memory at once."""
        ...

    async def count(self, selection: ContactSelection) -> int:
        """How many contacts `selection` holds."""
        ...

    async def reset_retries(self, now: datetime) -> int:
        """Every queued contact with a retry counted gets its retries back (retry 0, due `now`);
        the last error stays. How many."""
        ...
