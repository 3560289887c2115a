"""The sync queue and the Acoustic configuration in memory, with the PostgreSQL adapter's semantics."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
    """A stored inlet (`pending_acoustic`) or destination (`pending_sync`) row; `claimed_until` is the
    lease of the worker holding it, `given_up_at` when the policy gave it up."""

    item: PendingSync
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    given_up_at: datetime | None = None


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


def _due(row: QueueRow, now: datetime) -> bool:
    return (
        row.given_up_at is None
        and (row.next_attempt_at is None or row.next_attempt_at <= now)
        and (row.claimed_until is None or row.claimed_until <= now)
    )


def _scheduled_again(row: QueueRow, **changes: Any) -> QueueRow:
    """A destination's pending row scheduled again: its retries back, no error, due now, no longer
    given up, and a new version (a delivery of the previous one in flight does not complete it)."""
    item = replace(
        row.item,
        version=row.item.version + 1,
        retry=0,
        last_error="",
        failing_since=None,
        **changes,
    )
    return QueueRow(item, claimed_until=row.claimed_until)


def _oldest_first(item: PendingSync) -> tuple[datetime, uuid.UUID]:
    return (item.queued_at or datetime.min.replace(tzinfo=UTC), item.email_id)


class InMemorySyncQueue:
    """`inlet` is `pending_acoustic`; `destinations` holds each destination's `pending_sync` rows."""

    def __init__(
        self,
        inlet: dict[uuid.UUID, QueueRow],
        destinations: dict[str, dict[uuid.UUID, QueueRow]],
    ) -> None:
        self._inlet = inlet
        self._destinations = destinations

    def _rows(self, destination: str) -> dict[uuid.UUID, QueueRow]:
        return self._destinations.setdefault(destination, {})

    def _upsert(
        self, email_id: uuid.UUID, now: datetime, deletion: AcousticDeletion | None
    ) -> None:
        existing = self._inlet.get(email_id)
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
            self._inlet[email_id] = QueueRow(item)
            return
        item = replace(
            existing.item,
            version=existing.item.version + 1,
            operation=operation,
            deletion=deletion,
            update_timestamp=now,
        )
        self._inlet[email_id] = dataclasses.replace(existing, item=item)

    async def enqueue(self, email_id: uuid.UUID, now: datetime) -> None:
        self._upsert(email_id, now, None)

    async def enqueue_erasure(self, deletion: AcousticDeletion, now: datetime) -> None:
        self._upsert(deletion.email_id, now, deletion)

    async def enqueue_for(
        self, destination: str, email_ids: Sequence[uuid.UUID], now: datetime
    ) -> int:
        rows = self._rows(destination)
        scheduled = 0
        for email_id in dict.fromkeys(email_ids):
            existing = rows.get(email_id)
            if existing is None:
                item = PendingSync(
                    email_id=email_id, version=1, create_timestamp=now, update_timestamp=now
                )
                rows[email_id] = QueueRow(item)
            elif existing.item.operation == "erase":
                continue
            else:
                rows[email_id] = _scheduled_again(existing, update_timestamp=now)
            scheduled += 1
        return scheduled

    async def route(self, destinations: Sequence[str], *, limit: int, now: datetime) -> int:
        moved = sorted(
            (
                row.item
                for row in self._inlet.values()
                if row.claimed_until is None or row.claimed_until <= now
            ),
            key=_oldest_first,
        )[:limit]
        for inlet_item in moved:
            del self._inlet[inlet_item.email_id]
            for destination in destinations:
                rows = self._rows(destination)
                existing = rows.get(inlet_item.email_id)
                if existing is None:
                    rows[inlet_item.email_id] = QueueRow(replace(inlet_item, retry=0))
                    continue
                rows[inlet_item.email_id] = _scheduled_again(
                    existing,
                    operation=inlet_item.operation,
                    deletion=inlet_item.deletion,
                    update_timestamp=inlet_item.update_timestamp,
                )
        return len(moved)

    async def drop_erasures(self, queued_until: datetime) -> list[uuid.UUID]:
        dropped: set[uuid.UUID] = set()
        for rows in (self._inlet, *self._destinations.values()):
            expired = [
                email_id
                for email_id, row in rows.items()
                if row.item.operation == "erase"
                and row.item.update_timestamp is not None
                and row.item.update_timestamp <= queued_until
            ]
            for email_id in expired:
                del rows[email_id]
            dropped.update(expired)
        return sorted(dropped)

    async def claim(
        self, destination: str, *, limit: int, now: datetime, lease_until: datetime
    ) -> list[PendingSync]:
        rows = self._rows(destination)
        due = sorted(
            (row for row in rows.values() if _due(row, now)),
            key=lambda row: (row.item.retry, *_oldest_first(row.item)),
        )[:limit]
        for row in due:
            rows[row.item.email_id] = dataclasses.replace(row, claimed_until=lease_until)
        return [row.item for row in due]

    async def complete(self, destination: str, versions: Mapping[uuid.UUID, int]) -> set[uuid.UUID]:
        rows = self._rows(destination)
        completed: set[uuid.UUID] = set()
        for email_id, version in versions.items():
            row = rows.get(email_id)
            if row is None:
                continue
            if row.item.version == version:
                del rows[email_id]
                completed.add(email_id)
            else:
                rows[email_id] = dataclasses.replace(row, claimed_until=None)
        return completed

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
        rows = self._rows(destination)
        row = rows.get(email_id)
        if row is None:
            return
        if row.item.version != version:
            rows[email_id] = dataclasses.replace(row, claimed_until=None)
            return
        item = replace(
            row.item,
            retry=row.item.retry + (1 if use_retry else 0),
            last_error=error,
            failing_since=row.item.failing_since or now,
        )
        rows[email_id] = QueueRow(
            item, next_attempt_at=next_attempt_at, given_up_at=now if give_up else None
        )

    async def counts(self, destination: str) -> QueueCounts:
        # A contact with an inlet row counts once, as the inlet row: routing will reset its row here.
        rows = [
            row for row in self._rows(destination).values() if row.item.email_id not in self._inlet
        ]
        erasures = [
            row.item.queued_at
            for row in (*rows, *self._inlet.values())
            if row.item.operation == "erase" and row.given_up_at is None
        ]
        return QueueCounts(
            backlog=len(self._inlet) + sum(1 for row in rows if row.given_up_at is None),
            retry_backlog=sum(1 for row in rows if row.item.retry > 0 or row.item.last_error),
            oldest_erasure_at=min((at for at in erasures if at is not None), default=None),
        )

    async def failed(self, destination: str) -> list[PendingSync]:
        return sorted(
            (row.item for row in self._rows(destination).values() if row.given_up_at is not None),
            key=_oldest_first,
        )

    async def reset_failed(self, destination: str, now: datetime) -> int:
        rows = self._rows(destination)
        failed = [row for row in rows.values() if row.given_up_at is not None]
        for row in failed:
            item = replace(
                row.item,
                retry=0,
                last_error="",
                failing_since=None,
                version=row.item.version + 1,
                update_timestamp=now,
            )
            rows[item.email_id] = QueueRow(item)
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
