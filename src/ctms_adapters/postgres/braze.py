"""The Braze repositories on PostgreSQL (docs/braze.md): `BrazeSubscriptionGroupRepository` on
`braze_subscription_group`, `BrazeDigestStore` on `braze_attribute_digests`.

Each method is one short transaction on the engine of its own: the mappings are administration, and the
digests are written by the Braze destination once Braze accepted a batch, apart from the sync queue's
transactions (a digest stored for a contact whose queue row then fails to complete only spares the resend
of what Braze already holds).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import msgspec
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.braze_tables import braze_subscription_group
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_core.domain.braze import BrazeConfiguration, SubscriptionGroupKind

__all__ = ["PostgresBrazeDigestStore", "PostgresBrazeSubscriptionGroupRepository"]

_groups = braze_subscription_group.c

# The statements take the contacts as one array parameter (`= ANY`, `unnest`): a batch of hundreds of
# contacts is one round trip, and no statement is compiled per batch size.
_LOAD_DIGESTS = text(
    "SELECT email_id, digests FROM braze_attribute_digests "
    "WHERE email_id = ANY(CAST(:email_ids AS uuid[]))"
)
_FORGET_DIGESTS = text(
    "DELETE FROM braze_attribute_digests WHERE email_id = ANY(CAST(:email_ids AS uuid[]))"
)
_SAVE_DIGESTS = text(
    "INSERT INTO braze_attribute_digests (email_id, digests) "
    "SELECT email_id, CAST(digests AS jsonb) "
    "FROM unnest(CAST(:email_ids AS uuid[]), CAST(:digests AS text[])) AS given(email_id, digests) "
    "ON CONFLICT (email_id) DO UPDATE "
    "SET digests = excluded.digests, update_timestamp = now()"
)


@reports_unavailability
class PostgresBrazeSubscriptionGroupRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self) -> BrazeConfiguration:
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(select(_groups.kind, _groups.name, _groups.group_id))
            ).all()
        by_kind: dict[str, dict[str, str]] = {"newsletter": {}, "waitlist": {}}
        for row in rows:
            by_kind.setdefault(row.kind, {})[row.name] = row.group_id
        return BrazeConfiguration(
            newsletter_groups=by_kind["newsletter"], waitlist_groups=by_kind["waitlist"]
        )

    async def list(self, kind: SubscriptionGroupKind) -> list[tuple[str, str]]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(_groups.name, _groups.group_id)
                .where(_groups.kind == kind)
                .order_by(_groups.name)
            )
            return [(row.name, row.group_id) for row in rows]

    async def add(self, kind: SubscriptionGroupKind, name: str, group_id: str) -> None:
        statement = insert(braze_subscription_group).values(kind=kind, name=name, group_id=group_id)
        async with self._engine.begin() as connection:
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[_groups.kind, _groups.name],
                    set_={"group_id": statement.excluded.group_id, "update_timestamp": func.now()},
                )
            )

    async def remove(self, kind: SubscriptionGroupKind, name: str) -> str | None:
        async with self._engine.begin() as connection:
            removed = await connection.execute(
                delete(braze_subscription_group)
                .where(_groups.kind == kind, _groups.name == name)
                .returning(_groups.group_id)
            )
            return removed.scalar_one_or_none()


@reports_unavailability
class PostgresBrazeDigestStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
        if not email_ids:
            return {}
        async with self._engine.connect() as connection:
            rows = await connection.execute(_LOAD_DIGESTS, {"email_ids": list(email_ids)})
            return {row.email_id: dict(row.digests) for row in rows}

    async def save(self, digests: Mapping[uuid.UUID, Mapping[str, str]]) -> None:
        if not digests:
            return
        ordered = sorted(digests.items())
        async with self._engine.begin() as connection:
            await connection.execute(
                _SAVE_DIGESTS,
                {
                    "email_ids": [email_id for email_id, _ in ordered],
                    "digests": [
                        msgspec.json.encode(dict(values)).decode() for _, values in ordered
                    ],
                },
            )

    async def forget(self, email_ids: Sequence[uuid.UUID]) -> None:
        if not email_ids:
            return
        async with self._engine.begin() as connection:
            await connection.execute(_FORGET_DIGESTS, {"email_ids": list(email_ids)})
