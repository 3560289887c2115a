"""The Braze repositories in memory (docs/braze.md): the subscription group mapping and the per-contact
attribute digests, for unit tests and embedding."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from ctms_core.domain.braze import BrazeConfiguration, SubscriptionGroupKind

__all__ = ["InMemoryBrazeDigestStore", "InMemoryBrazeSubscriptionGroupRepository"]


class InMemoryBrazeSubscriptionGroupRepository:
    def __init__(self) -> None:
        self.groups: dict[tuple[SubscriptionGroupKind, str], str] = {}

    async def load(self) -> BrazeConfiguration:
        return BrazeConfiguration(
            newsletter_groups={n: g for (k, n), g in self.groups.items() if k == "newsletter"},
            waitlist_groups={n: g for (k, n), g in self.groups.items() if k == "waitlist"},
        )

    async def list(self, kind: SubscriptionGroupKind) -> list[tuple[str, str]]:
        return sorted((n, g) for (k, n), g in self.groups.items() if k == kind)

    async def add(self, kind: SubscriptionGroupKind, name: str, group_id: str) -> None:
        self.groups[(kind, name)] = group_id

    async def remove(self, kind: SubscriptionGroupKind, name: str) -> str | None:
        return self.groups.pop((kind, name), None)


class InMemoryBrazeDigestStore:
    def __init__(self) -> None:
        self.digests: dict[uuid.UUID, dict[str, str]] = {}

    async def load(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
        return {
            email_id: dict(self.digests[email_id])
            for email_id in email_ids
            if email_id in self.digests
        }

    async def save(self, digests: Mapping[uuid.UUID, Mapping[str, str]]) -> None:
        for email_id, values in digests.items():
            self.digests[email_id] = dict(values)

    async def forget(self, email_ids: Sequence[uuid.UUID]) -> None:
        for email_id in email_ids:
            self.digests.pop(email_id, None)
