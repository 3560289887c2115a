"""Storage ports of the sync: the queue and the sync configuration. Part of the unit of work,
so a contact write and its enqueue commit together."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from ctms_core.domain.acoustic import AcousticConfiguration, AcousticDeletion
from ctms_core.domain.sync import PendingSync, QueueCounts


class SyncQueue(Protocol):
    """The sync queue (docs/adr/0009-one-sync-queue.md): an inlet that contact writes enqueue into,
    one pending row per contact, and the pending state of each destination (`acoustic`, `braze`, …),
    one row per destination and contact, with its own version, retries and backoff.

    Claimed rows are leased until `lease_until`: other workers skip them, and the rows of a worker that
    died are claimed again once the lease is over. `complete` and `fail` end the lease.
    """

    async def enqueue(self, email_id: uuid.UUID, now: datetime) -> None:
        """Schedule a sync of the contact: insert its inlet row, or reset it (operation `sync`) and
        bump its version. A contact write queues its contact itself (`ContactRepository.add`/`save`
        with `enqueue_at`), in the same write; this is for the other writers."""
        ...

    async def enqueue_erasure(self, deletion: AcousticDeletion, now: datetime) -> None:
        """Schedule the erasure of the contact from every destination, replacing any pending sync."""
        ...

    async def enqueue_for(
        self, destination: str, email_ids: Sequence[uuid.UUID], now: datetime
    ) -> int:
        """Schedule a sync of the contacts to `destination` alone, past the inlet (the other
        destinations get nothing): a new pending row, due now, or a pending sync reset as `route`
        resets it (retry 0, no error, due now, not given up, version bumped). A pending erasure stays
        an erasure. How many contacts were scheduled."""
        ...

    async def route(self, destinations: Sequence[str], *, limit: int, now: datetime) -> int:
        """Move up to `limit` inlet rows (not leased by a worker of an older release) to the pending
        state of each of `destinations`: a new row, or, for a contact already pending there, a reset
        one (retry 0, no error, no backoff, not given up, the inlet's operation) with its version
        bumped, so an upload of the previous version does not complete it. How many rows moved."""
        ...

    async def drop_erasures(self, queued_until: datetime) -> list[uuid.UUID]:
        """Delete the erasure rows queued (or re-queued) at or before `queued_until`, in the inlet and
        for every destination, the addresses they hold with them, whatever their state; the
        `email_id`s of the contacts whose rows were deleted."""
        ...

    async def claim(
        self, destination: str, *, limit: int, now: datetime, lease_until: datetime
    ) -> list[PendingSync]:
        """Lease up to `limit` rows of `destination` due at `now` (not given up, not leased by another
        worker, next attempt not in the future), fewest retries then oldest first. In PostgreSQL:
        `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same row."""
        ...

    async def complete(self, destination: str, versions: Mapping[uuid.UUID, int]) -> set[uuid.UUID]:
        """For each contact delivered (`email_id` → the version sent): delete its row if its version is
        still that one, else release it for the next pass (an edit arrived during the delivery). The
        contacts whose rows were deleted."""
        ...

    async def fail(
        self,
        destination: str,
        email_id: uuid.UUID,
        version: int,
        error: str,
        next_attempt_at: datetime,
        *,
        now: datetime,
        use_retry: bool = True,
        give_up: bool = False,
    ) -> None:
        """Record a failed attempt (`last_error`, not before `next_attempt_at`; retry + 1 unless
        `use_retry` is false, as for an outage; failing since `now` unless it already was; given up
        when `give_up`) and release the row; if the version changed meanwhile the newer edit keeps
        its fresh state."""
        ...

    async def counts(self, destination: str) -> QueueCounts:
        """`destination`'s backlog (inlet rows included), retry backlog and oldest waiting erasure."""
        ...

    async def failed(self, destination: str) -> list[PendingSync]:
        """`destination`'s given-up rows, oldest first."""
        ...

    async def reset_failed(self, destination: str, now: datetime) -> int:
        """Re-drive every given-up row of `destination` (retry 0, due now, version bumped; an erasure
        stays an erasure); returns how many."""
        ...


class AcousticConfigRepository(Protocol):
    """The `acoustic_field` and `acoustic_newsletter_mapping` tables (docs/contract.md §1.4)."""

    async def load(self) -> AcousticConfiguration: ...

    async def fields(self) -> list[tuple[str, str]]:
        """`(tablename, field)` pairs sorted by table then field."""
        ...

    async def add_field(self, tablename: str, field: str) -> None:
        """Idempotent."""
        ...

    async def remove_field(self, tablename: str, field: str) -> bool:
        """Whether the field existed."""
        ...

    async def newsletter_mappings(self) -> list[tuple[str, str]]:
        """`(source, destination)` pairs sorted by source."""
        ...

    async def add_newsletter_mapping(self, source: str, destination: str) -> None:
        """Insert or change the destination of `source`."""
        ...

    async def remove_newsletter_mapping(self, source: str) -> str | None:
        """The removed destination, None when `source` had no mapping."""
        ...
