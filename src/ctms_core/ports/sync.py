"""Storage ports of the Acoustic sync: the queue and the sync configuration. Part of the unit of work,
so a contact write and its enqueue commit together."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from ctms_core.domain.acoustic import AcousticConfiguration, AcousticDeletion
from ctms_core.domain.sync import PendingSync, QueueCounts


class SyncQueue(Protocol):
    """One pending row per contact (`email_id` unique).

    Claimed rows are leased until `lease_until`: other workers skip them, and the rows of a worker that
    died are claimed again once the lease is over. `complete` and `fail` end the lease.
    """

    async def enqueue(self, email_id: uuid.UUID, now: datetime) -> None:
        """Schedule a sync of the contact: insert, or reset the row (retry 0, no error, attempt as soon
        as possible, operation `sync`) and bump its version — a row being uploaded is synced again. A
        contact write queues its contact itself (`ContactRepository.add`/`save` with `enqueue_at`), in
        the same write; this is for the other writers."""
        ...

    async def enqueue_erasure(self, deletion: AcousticDeletion, now: datetime) -> None:
        """Schedule the erasure of the contact from Acoustic, replacing any pending sync of it."""
        ...

    async def drop_erasures(self, queued_until: datetime) -> list[uuid.UUID]:
        """Delete the erasure rows queued (or re-queued) at or before `queued_until`, the addresses
        they hold with them, whatever their state; the `email_id`s of the rows deleted."""
        ...

    async def claim(
        self, *, limit: int, retry_limit: int, now: datetime, lease_until: datetime
    ) -> list[PendingSync]:
        """Lease up to `limit` rows due at `now` (retry below `retry_limit`, not leased by another
        worker, next attempt not in the future), fewest retries then oldest first. In PostgreSQL:
        `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same row."""
        ...

    async def complete(self, email_id: uuid.UUID, version: int) -> bool:
        """Delete the row if its version is still `version` (True); else release it for the next
        pass (an edit arrived during the upload) and return False."""
        ...

    async def fail(
        self,
        email_id: uuid.UUID,
        version: int,
        error: str,
        next_attempt_at: datetime,
        *,
        use_retry: bool = True,
    ) -> None:
        """Record a failed attempt (`last_error`, not before `next_attempt_at`; retry + 1 unless
        `use_retry` is false, as for an Acoustic outage) and release the row; if the version changed
        meanwhile the newer edit keeps its fresh retry count."""
        ...

    async def counts(self, retry_limit: int) -> QueueCounts:
        """`backlog`: rows with retry below `retry_limit`; `retry_backlog`: rows with a retry counted
        or an error recorded (failed at least once since their last enqueue)."""
        ...

    async def failed(self, retry_limit: int) -> list[PendingSync]:
        """Rows that exhausted their retries (`retry >= retry_limit`), oldest first."""
        ...

    async def reset_failed(self, retry_limit: int, now: datetime) -> int:
        """Re-drive every row past the retry limit (retry 0, due now, version bumped; an erasure stays
        an erasure); returns how many."""
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
