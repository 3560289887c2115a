"""`SyncQueue` and `AcousticConfigRepository` on PostgreSQL (docs/contract.md §1.4, §9).

`pending_acoustic` is the inlet contact writes enqueue into (`enqueue_step`; v3.3's ctms-api writes it
too); `route` moves its rows to `pending_sync`, one row per enabled destination, where they are claimed,
completed and failed (docs/adr/0009-one-sync-queue.md).

Claiming is one statement: an UPDATE that leases the rows a `SELECT … FOR UPDATE SKIP LOCKED` picked, so
concurrent workers each get different rows without waiting for one another, and the lease keeps the rows
away from other workers after the claim's transaction commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    delete,
    func,
    select,
    true,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from ctms_adapters.postgres.acoustic_tables import (
    acoustic_field,
    acoustic_newsletter_mapping,
    pending_acoustic,
    pending_sync,
)
from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope, unnested_rows
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_core.domain.acoustic import AcousticConfiguration, AcousticDeletion
from ctms_core.domain.sync import PendingSync, QueueCounts

_ITEM_COLUMNS = (
    pending_sync.c.email_id,
    pending_sync.c.version,
    pending_sync.c.retry,
    pending_sync.c.operation,
    pending_sync.c.deletion,
    pending_sync.c.last_error,
    pending_sync.c.create_timestamp,
    pending_sync.c.update_timestamp,
    pending_sync.c.failing_since,
)


def _item(row: Any) -> PendingSync:
    return PendingSync(
        email_id=row.email_id,
        version=row.version,
        retry=row.retry,
        operation=row.operation,
        deletion=None if row.deletion is None else msgspec.convert(row.deletion, AcousticDeletion),
        last_error=row.last_error,
        create_timestamp=row.create_timestamp,
        update_timestamp=row.update_timestamp,
        failing_since=row.failing_since,
    )


# The columns of queue entries written from arrays, and the table column each one fills.
_ENQUEUED_COLUMNS: Final = {
    "email_id": pending_acoustic.c.email_id,
    "operation": pending_acoustic.c.operation,
    "deletion": pending_acoustic.c.deletion,
    "now": pending_acoustic.c.update_timestamp,
}


def enqueue_step(prefix: str, *, only: Callable[[Any], Any] | None = None) -> Any:
    """Insert the queue rows, or reset them: retries to 0, no backoff, version + 1 (so an upload of the
    previous version does not complete it). The rows come as column arrays (`<prefix>__<column>`,
    `enqueue_parameters`), so the entries of several units concatenate into one statement; `only` (a
    condition on the rows' `email_id`) keeps just some of them. A step of the contact write
    (`contact_write.STEPS`), and the statement of `enqueue` on its own."""
    item = unnested_rows(prefix, {name: column.type for name, column in _ENQUEUED_COLUMNS.items()})
    rows = select(item.c.email_id, item.c.operation, item.c.deletion, item.c.now, item.c.now)
    if only is not None:
        rows = rows.where(only(item.c.email_id))
    statement = insert(pending_acoustic).from_select(
        ["email_id", "operation", "deletion", "create_timestamp", "update_timestamp"], rows
    )
    return statement.on_conflict_do_update(
        index_elements=[pending_acoustic.c.email_id],
        set_={
            "retry": 0,
            "last_error": "",
            "next_attempt_at": None,
            "version": pending_acoustic.c.version + 1,
            "operation": statement.excluded.operation,
            "deletion": statement.excluded.deletion,
            "update_timestamp": statement.excluded.update_timestamp,
        },
    )


def enqueue_parameters(
    prefix: str, email_id: uuid.UUID, now: datetime, deletion: AcousticDeletion | None = None
) -> dict[str, list[Any]]:
    """The column arrays of one queue entry for `enqueue_step(prefix)`."""
    return {
        f"{prefix}__email_id": [email_id],
        f"{prefix}__operation": ["sync" if deletion is None else "erase"],
        f"{prefix}__deletion": [None if deletion is None else msgspec.to_builtins(deletion)],
        f"{prefix}__now": [now],
    }


_ALONE = "queue"
_ENQUEUE = DriverStatement(enqueue_step(_ALONE))
# A delivery is complete when the row still has the version that was sent; a newer version (an edit made
# during the delivery) only loses its claim, so the next pass sends it again. One statement per batch.
_DESTINATION = bindparam("destination", type_=pending_sync.c.destination.type)


def _complete_statement() -> Any:
    sent = unnested_rows(
        "sent", {"email_id": pending_sync.c.email_id.type, "version": pending_sync.c.version.type}
    )
    done = (
        delete(pending_sync)
        .where(
            pending_sync.c.destination == _DESTINATION,
            pending_sync.c.email_id == sent.c.email_id,
            pending_sync.c.version == sent.c.version,
        )
        .returning(pending_sync.c.email_id)
        .cte("done")
    )
    released = (
        update(pending_sync)
        .where(
            pending_sync.c.destination == _DESTINATION,
            pending_sync.c.email_id.in_(select(sent.c.email_id)),
            pending_sync.c.email_id.not_in(select(done.c.email_id)),
        )
        .values(claimed_until=None)
        .returning(pending_sync.c.email_id)
        .cte("released")
    )
    return select(done.c.email_id).add_cte(released)


_COMPLETE = DriverStatement(_complete_statement())
_RELEASE = DriverStatement(
    update(pending_sync)
    .where(
        pending_sync.c.destination == _DESTINATION,
        pending_sync.c.email_id == bindparam("email_id", type_=pending_sync.c.email_id.type),
    )
    .values(claimed_until=None)
)


# A destination's pending row scheduled again: its retries back, no error, due now, no longer given up,
# and a new version, so a delivery of the previous version in flight does not complete it.
_RESET_PENDING: Final[dict[str, Any]] = {
    "retry": 0,
    "last_error": "",
    "next_attempt_at": None,
    "failing_since": None,
    "given_up_at": None,
    "version": pending_sync.c.version + 1,
}


def _route_statement() -> Any:
    """Move inlet rows to each destination's pending state, in one statement: a DELETE of the oldest
    inlet rows (`SKIP LOCKED`: concurrent workers route different rows; rows leased by a worker of an
    older release are left to it) feeding an upsert into `pending_sync`, one row per destination. A new
    row keeps the inlet's version (the number of enqueues); a pending one gets its own version bumped."""
    now = bindparam("now", type_=DateTime(timezone=True))
    picked = (
        select(pending_acoustic.c.id)
        .where(
            pending_acoustic.c.claimed_until.is_(None) | (pending_acoustic.c.claimed_until <= now)
        )
        .order_by(pending_acoustic.c.update_timestamp)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    moved = (
        delete(pending_acoustic)
        .where(pending_acoustic.c.id.in_(picked))
        .returning(
            pending_acoustic.c.email_id,
            pending_acoustic.c.version,
            pending_acoustic.c.operation,
            pending_acoustic.c.deletion,
            pending_acoustic.c.create_timestamp,
            pending_acoustic.c.update_timestamp,
        )
        .cte("moved")
    )
    names = func.unnest(bindparam("destinations", type_=ARRAY(String()))).table_valued("name")
    rows = select(
        names.c.name,
        moved.c.email_id,
        moved.c.version,
        moved.c.operation,
        moved.c.deletion,
        moved.c.create_timestamp,
        moved.c.update_timestamp,
    ).select_from(moved.join(names, true()))
    statement = insert(pending_sync).from_select(
        [
            "destination",
            "email_id",
            "version",
            "operation",
            "deletion",
            "create_timestamp",
            "update_timestamp",
        ],
        rows,
    )
    return statement.on_conflict_do_update(
        index_elements=[pending_sync.c.destination, pending_sync.c.email_id],
        set_={
            **_RESET_PENDING,
            "operation": statement.excluded.operation,
            "deletion": statement.excluded.deletion,
            "update_timestamp": statement.excluded.update_timestamp,
        },
    ).returning(pending_sync.c.email_id)


_ROUTE = _route_statement()


def _enqueue_for_statement() -> Any:
    """Schedule contacts for one destination, past the inlet: new rows, or pending syncs reset as
    `_route_statement` resets them; a pending erasure is left as it is (not returned)."""
    now = bindparam("now", type_=DateTime(timezone=True))
    email_ids = func.unnest(bindparam("email_ids", type_=ARRAY(pending_sync.c.email_id.type)))
    statement = insert(pending_sync).from_select(
        ["destination", "email_id", "create_timestamp", "update_timestamp"],
        select(
            bindparam("destination", type_=String()),
            email_ids,
            now,
            now,
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=[pending_sync.c.destination, pending_sync.c.email_id],
        set_={
            **_RESET_PENDING,
            "update_timestamp": statement.excluded.update_timestamp,
        },
        where=pending_sync.c.operation == "sync",
    ).returning(pending_sync.c.email_id)


_ENQUEUE_FOR = _enqueue_for_statement()


@reports_unavailability
class PostgresSyncQueue:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def _execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> Any:
        await self._scope.begin()
        return await self._scope.run(statement, parameters)

    async def _upsert(
        self, email_id: uuid.UUID, now: datetime, deletion: AcousticDeletion | None
    ) -> None:
        # A contact write queues its contact itself, in its own statement (`ContactRepository.add`,
        # `save`): this is for the other writers (Stripe, a resync, an erasure), inside the transaction.
        await self._scope.begin()
        await self._scope.execute(_ENQUEUE, enqueue_parameters(_ALONE, email_id, now, deletion))

    async def enqueue(self, email_id: uuid.UUID, now: datetime) -> None:
        await self._upsert(email_id, now, None)

    async def enqueue_erasure(self, deletion: AcousticDeletion, now: datetime) -> None:
        await self._upsert(deletion.email_id, now, deletion)

    async def enqueue_for(
        self, destination: str, email_ids: Sequence[uuid.UUID], now: datetime
    ) -> int:
        if not email_ids:
            return 0
        result = await self._execute(
            _ENQUEUE_FOR,
            {"destination": destination, "email_ids": list(dict.fromkeys(email_ids)), "now": now},
        )
        return len(result.all())

    async def route(self, destinations: Sequence[str], *, limit: int, now: datetime) -> int:
        result = await self._execute(
            _ROUTE, {"destinations": list(destinations), "limit": limit, "now": now}
        )
        return len({row.email_id for row in result})

    async def drop_erasures(self, queued_until: datetime) -> list[uuid.UUID]:
        # One statement: the inlet's erasures and every destination's.
        inlet, routed = (
            delete(table)
            .where(table.c.operation == "erase", table.c.update_timestamp <= queued_until)
            .returning(table.c.email_id)
            .cte(f"dropped_{table.name}")
            for table in (pending_acoustic, pending_sync)
        )
        result = await self._execute(union(select(inlet.c.email_id), select(routed.c.email_id)))
        return sorted(result.scalars())

    async def claim(
        self, destination: str, *, limit: int, now: datetime, lease_until: datetime
    ) -> list[PendingSync]:
        due = (
            select(pending_sync.c.email_id)
            .where(
                pending_sync.c.destination == destination,
                pending_sync.c.given_up_at.is_(None),
                (pending_sync.c.next_attempt_at.is_(None))
                | (pending_sync.c.next_attempt_at <= now),
                (pending_sync.c.claimed_until.is_(None)) | (pending_sync.c.claimed_until <= now),
            )
            .order_by(pending_sync.c.retry, pending_sync.c.update_timestamp)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # Materialized: PostgreSQL may run a `LIMIT … SKIP LOCKED` subquery under `IN` more than
            # once, and each run may pick other rows, so a claim could lease more than `limit` rows.
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        result = await self._execute(
            update(pending_sync)
            .where(
                pending_sync.c.destination == destination,
                pending_sync.c.email_id == due.c.email_id,
            )
            .values(claimed_until=lease_until)
            .returning(*_ITEM_COLUMNS)
        )
        items = [_item(row) for row in result]
        return sorted(items, key=lambda item: (item.retry, item.update_timestamp or now))

    async def complete(self, destination: str, versions: Mapping[uuid.UUID, int]) -> set[uuid.UUID]:
        # One statement per batch, in autocommit.
        rows = await self._scope.execute(
            _COMPLETE,
            {
                "destination": destination,
                "sent__email_id": list(versions),
                "sent__version": list(versions.values()),
            },
        )
        return {row[0] for row in rows}

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
        result = await self._execute(
            update(pending_sync)
            .where(
                pending_sync.c.destination == destination,
                pending_sync.c.email_id == email_id,
                pending_sync.c.version == version,
            )
            .values(
                retry=pending_sync.c.retry + (1 if use_retry else 0),
                last_error=error,
                next_attempt_at=next_attempt_at,
                claimed_until=None,
                failing_since=func.coalesce(pending_sync.c.failing_since, now),
                given_up_at=now if give_up else None,
            )
            .returning(pending_sync.c.email_id)
        )
        if result.first() is None:
            await self._scope.execute(_RELEASE, {"destination": destination, "email_id": email_id})

    async def counts(self, destination: str) -> QueueCounts:
        erasure = pending_sync.c.operation == "erase"
        result = await self._scope.run(
            select(
                func.count().filter(pending_sync.c.given_up_at.is_(None)),
                func.count().filter((pending_sync.c.retry > 0) | (pending_sync.c.last_error != "")),
                func.min(pending_sync.c.update_timestamp).filter(
                    erasure, pending_sync.c.given_up_at.is_(None)
                ),
                select(func.count()).select_from(pending_acoustic).scalar_subquery(),
                select(func.min(pending_acoustic.c.update_timestamp))
                .where(pending_acoustic.c.operation == "erase")
                .scalar_subquery(),
            ).where(
                pending_sync.c.destination == destination,
                # A contact with an inlet row counts once, as the inlet row: routing will reset its
                # row here.
                ~select(pending_acoustic.c.id)
                .where(pending_acoustic.c.email_id == pending_sync.c.email_id)
                .exists(),
            )
        )
        backlog, retry_backlog, oldest, inlet, oldest_inlet = tuple(result.one())
        erasures = [at for at in (oldest, oldest_inlet) if at is not None]
        return QueueCounts(
            backlog=int(backlog) + int(inlet),
            retry_backlog=int(retry_backlog),
            oldest_erasure_at=min(erasures, default=None),
        )

    async def failed(self, destination: str) -> list[PendingSync]:
        result = await self._scope.run(
            select(*_ITEM_COLUMNS)
            .where(
                pending_sync.c.destination == destination, pending_sync.c.given_up_at.isnot(None)
            )
            .order_by(pending_sync.c.update_timestamp, pending_sync.c.email_id)
        )
        return [_item(row) for row in result]

    async def reset_failed(self, destination: str, now: datetime) -> int:
        result = await self._execute(
            update(pending_sync)
            .where(
                pending_sync.c.destination == destination, pending_sync.c.given_up_at.isnot(None)
            )
            .values(
                retry=0,
                last_error="",
                next_attempt_at=None,
                claimed_until=None,
                failing_since=None,
                given_up_at=None,
                version=pending_sync.c.version + 1,
                update_timestamp=now,
            )
            .returning(pending_sync.c.email_id)
        )
        return len(result.all())


@reports_unavailability
class PostgresAcousticConfigRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def load(self) -> AcousticConfiguration:
        fields = await self.fields()
        mapping = await self.newsletter_mappings()
        return AcousticConfiguration(
            main_fields=frozenset(f for t, f in fields if t == "main"),
            waitlist_fields=frozenset(f for t, f in fields if t == "waitlist"),
            newsletter_mapping=dict(mapping),
        )

    async def fields(self) -> list[tuple[str, str]]:
        result = await self._scope.run(
            select(acoustic_field.c.tablename, acoustic_field.c.field).order_by(
                acoustic_field.c.tablename, acoustic_field.c.field
            )
        )
        return [(row.tablename, row.field) for row in result]

    async def add_field(self, tablename: str, field: str) -> None:
        await self._scope.begin()
        await self._scope.run(
            insert(acoustic_field).values(tablename=tablename, field=field).on_conflict_do_nothing()
        )

    async def remove_field(self, tablename: str, field: str) -> bool:
        await self._scope.begin()
        result = await self._scope.run(
            delete(acoustic_field)
            .where(acoustic_field.c.tablename == tablename, acoustic_field.c.field == field)
            .returning(acoustic_field.c.field)
        )
        return result.first() is not None

    async def newsletter_mappings(self) -> list[tuple[str, str]]:
        result = await self._scope.run(
            select(
                acoustic_newsletter_mapping.c.source, acoustic_newsletter_mapping.c.destination
            ).order_by(acoustic_newsletter_mapping.c.source)
        )
        return [(row.source, row.destination) for row in result]

    async def add_newsletter_mapping(self, source: str, destination: str) -> None:
        await self._scope.begin()
        statement = insert(acoustic_newsletter_mapping).values(
            source=source, destination=destination
        )
        await self._scope.run(
            statement.on_conflict_do_update(
                index_elements=[acoustic_newsletter_mapping.c.source],
                set_={"destination": statement.excluded.destination},
            )
        )

    async def remove_newsletter_mapping(self, source: str) -> str | None:
        await self._scope.begin()
        result = await self._scope.run(
            delete(acoustic_newsletter_mapping)
            .where(acoustic_newsletter_mapping.c.source == source)
            .returning(acoustic_newsletter_mapping.c.destination)
        )
        row = result.first()
        return None if row is None else str(row.destination)
