"""The store of waitlist field rules (docs/waitlists.md)."""

from __future__ import annotations

from typing import Protocol

from ctms_core.domain.waitlist_rules import WaitlistFieldRule


class WaitlistFieldRuleRepository(Protocol):
    async def list(self) -> list[WaitlistFieldRule]:
        """Every rule, ordered by waitlist then field."""
        ...

    async def set(self, rule: WaitlistFieldRule) -> None:
        """Add the rule, or replace the rule of the same waitlist and field."""
        ...

    async def remove(self, waitlist: str, field: str) -> bool:
        """Remove the rule of `waitlist` and `field`; False when there was none."""
        ...
