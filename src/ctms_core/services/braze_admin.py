"""Braze administration (docs/braze.md): which subscription group each newsletter and waitlist stands for.

Rules: a name and a group id are non-empty after trimming, at most 255 characters, and hold no control
character; adding a mapped name replaces its group; removing an unmapped name is a not-found error. The
sync worker reads the mapping at the start of every pass, so a change applies to the next contacts sent
(contacts already in Braze keep their groups until they change or are resent).
"""

from __future__ import annotations

from typing import Final

from ctms_core.domain.braze import SubscriptionGroupKind
from ctms_core.domain.errors import BadRequestError, NotFoundError
from ctms_core.ports.braze import BrazeSubscriptionGroupRepository

__all__ = ["BrazeAdminService"]

_MAX_LENGTH: Final = 255


def _checked(what: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise BadRequestError(f"The {what} must not be empty.")
    if len(value) > _MAX_LENGTH:
        raise BadRequestError(f"The {what} must be at most {_MAX_LENGTH} characters long.")
    if not value.isprintable():
        raise BadRequestError(f"The {what} must not hold control characters.")
    return value


class BrazeAdminService:
    def __init__(self, subscription_groups: BrazeSubscriptionGroupRepository) -> None:
        self._groups = subscription_groups

    async def subscription_groups(self, kind: SubscriptionGroupKind) -> list[tuple[str, str]]:
        """`(name, group_id)` of every mapped name of `kind`, by name."""
        return await self._groups.list(kind)

    async def map(self, kind: SubscriptionGroupKind, name: str, group_id: str) -> tuple[str, str]:
        """Map `name` to `group_id` (replacing its group); the stored `(name, group_id)`."""
        name, group_id = _checked(f"{kind} name", name), _checked("subscription group id", group_id)
        await self._groups.add(kind, name, group_id)
        return name, group_id

    async def unmap(self, kind: SubscriptionGroupKind, name: str) -> str:
        """Unmap `name`; the group it had. Not found when it had none."""
        removed = await self._groups.remove(kind, name.strip())
        if removed is None:
            raise NotFoundError(
                f"The {kind} {name.strip()!r} is not mapped to a subscription group."
            )
        return removed
