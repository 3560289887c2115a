"""The Acoustic sync queue and configuration in memory, with the PostgreSQL adapter's semantics."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from msgspec.structs import replace

from ctms_core.domain.acoustic import (
    DEFAULT_MAIN_FIELDS,
    DEFAULT_NEWSLETTER_MAPPING,
    DEFAULT_WAITLIST_FIELDS,
    AcousticConfiguration,
    AcousticDeletion,
)
from ctms_core.domain.sync import PendingSync, QueueCounts, SyncOperation


@dataclasses.dataclass(frozen=True)
class QueueRow:
    """A stored `pending_acoustic` row; `claimed_until` is the lease of the worker holding it."""

    item: PendingSync
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None


@dataclasses.dataclass
class AcousticConfigState:
    """`acoustic_field` rows and `acoustic_newsletter_mapping`, seeded as the migration seeds them."""

    fields: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    mapping: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def seeded(cls) -> AcousticConfigState:
        return cls(
            fields={("main", f) for f in DEFAULT_MAIN_FIELDS}
            | {("waitlist", f) for f in DEFAULT_WAITLIST_FIELDS},
            mapping=dict(DEFAULT_NEWSLETTER_MAPPING),
        )

    def copy(self) -> AcousticConfigState:
        return AcousticConfigState(set(self.fields), dict(self.mapping))


def _due(row: QueueRow, retry_limit: int, now: datetime) -> bool:
    return (
        row.item.retry < retry_limit
        and (row.next_attempt_at is None or row.next_attempt_at <= now)
        and (row.claimed_until is None or row.claimed_until <= now)
    )


class InMemorySyncQueue:
    def __init__(self, rows: dict[uuid.UUID, QueueRow]) -> None:
        self._rows = rows

    def _upsert(
        self, email_id: uuid.UUID, now: datetime, deletion: AcousticDeletion | None
    ) -> None:
        existing = self._rows.get(email_id)
        operation: SyncOperation = "erase" if deletion is not None else "sync"
        if existing is None:
            item = PendingSync(
                email_id=email_id,
                version=1,
                operation=operation,
                deletion=deletion,
                create_timestamp=now,
                update_timestamp=now,
            )
            self._rows[email_id] = QueueRow(item)
            return
        item = replace(
            existing.item,
            version=existing.item.version + 1,
            retry=0,
            last_error="",
            operation=operation,
            deletion=deletion,
            update_timestamp=now,
        )
        self._rows[email_id] = dataclasses.replace(existing, item=item, next_attempt_at=None)

    async def enqueue(self, email_id: uuid.UUID, now: datetime) -> None:
        self._upsert(email_id, now, None)

    async def enqueue_erasure(self, deletion: AcousticDeletion, now: datetime) -> None:
        self._upsert(deletion.email_id, now, deletion)

    async def drop_erasures(self, queued_until: datetime) -> list[uuid.UUID]:
        dropped = sorted(
            email_id
            for email_id, row in self._rows.items()
            if row.item.operation == "erase"
            and row.item.update_timestamp is not None
            and row.item.update_timestamp <= queued_until
        )
        for email_id in dropped:
            del self._rows[email_id]
        return dropped

    async def claim(
        self, *, limit: int, retry_limit: int, now: datetime, lease_until: datetime
    ) -> list[PendingSync]:
        due = sorted(
            (row for row in self._rows.values() if _due(row, retry_limit, now)),
            key=lambda row: (row.item.retry, row.item.update_timestamp or now, row.item.email_id),
        )[:limit]
        for row in due:
            self._rows[row.item.email_id] = dataclasses.replace(row, claimed_until=lease_until)
        return [row.item for row in due]

    async def complete(self, email_id: uuid.UUID, version: int) -> bool:
        row = self._rows.get(email_id)
        if row is None:
            return True
        if row.item.version == version:
            del self._rows[email_id]
            return True
        self._rows[email_id] = dataclasses.replace(row, claimed_until=None)
        return False

    async def fail(
        self,
        email_id: uuid.UUID,
        version: int,
        error: str,
        next_attempt_at: datetime,
        *,
        use_retry: bool = True,
    ) -> None:
        row = self._rows.get(email_id)
        if row is None:
            return
        if row.item.version != version:
            self._rows[email_id] = dataclasses.replace(row, claimed_until=None)
            return
        item = replace(row.item, retry=row.item.retry + (1 if use_retry else 0), last_error=error)
        self._rows[email_id] = QueueRow(item, next_attempt_at=next_attempt_at, claimed_until=None)

    async def counts(self, retry_limit: int) -> QueueCounts:
        rows = list(self._rows.values())
        return QueueCounts(
            backlog=sum(1 for row in rows if row.item.retry < retry_limit),
            retry_backlog=sum(1 for row in rows if row.item.retry > 0 or row.item.last_error),
        )

    async def failed(self, retry_limit: int) -> list[PendingSync]:
        return sorted(
            (row.item for row in self._rows.values() if row.item.retry >= retry_limit),
            key=lambda item: (item.update_timestamp or datetime.min, item.email_id),
        )

    async def reset_failed(self, retry_limit: int, now: datetime) -> int:
        failed = [row for row in self._rows.values() if row.item.retry >= retry_limit]
        for row in failed:
            item = replace(
                row.item, retry=0, last_error="", version=row.item.version + 1, update_timestamp=now
            )
            self._rows[item.email_id] = QueueRow(item)
        return len(failed)


class InMemoryAcousticConfigRepository:
    def __init__(self, state: AcousticConfigState) -> None:
        self._state = state

    async def load(self) -> AcousticConfiguration:
        return AcousticConfiguration(
            main_fields=frozenset(f for t, f in self._state.fields if t == "main"),
            waitlist_fields=frozenset(f for t, f in self._state.fields if t == "waitlist"),
            newsletter_mapping=dict(sorted(self._state.mapping.items())),
        )

    async def fields(self) -> list[tuple[str, str]]:
        return sorted(self._state.fields)

    async def add_field(self, tablename: str, field: str) -> None:
        self._state.fields.add((tablename, field))

    async def remove_field(self, tablename: str, field: str) -> bool:
        if (tablename, field) not in self._state.fields:
            return False
        self._state.fields.discard((tablename, field))
        return True

    async def newsletter_mappings(self) -> list[tuple[str, str]]:
        return sorted(self._state.mapping.items())

    async def add_newsletter_mapping(self, source: str, destination: str) -> None:
        self._state.mapping[source] = destination

    async def remove_newsletter_mapping(self, source: str) -> str | None:
        return self._state.mapping.pop(source, None)
