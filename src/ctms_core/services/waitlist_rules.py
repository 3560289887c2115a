"""Waitlist field rules: their administration, and the snapshot the API validates with (docs/waitlists.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ctms_core.domain.errors import BadRequestError, NotFoundError
from ctms_core.domain.waitlist_rules import (
    MAX_RULE_LENGTH,
    WaitlistFieldRule,
    WaitlistFieldRules,
)
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork

__all__ = [
    "CachedWaitlistRules",
    "InvalidWaitlistFieldRuleError",
    "WaitlistFieldRuleNotFoundError",
    "WaitlistRulesAdminService",
]

logger = logging.getLogger("ctms.waitlist_rules")

# The columns' size (`waitlist_field_rules.waitlist` and `.field`); a waitlist name has the same limit.
_NAME_LENGTH = 255


class InvalidWaitlistFieldRuleError(BadRequestError):
    """A rule that cannot be stored as given."""


class WaitlistFieldRuleNotFoundError(NotFoundError):
    """No rule for this waitlist and field."""


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > _NAME_LENGTH or "\x00" in value:
        raise InvalidWaitlistFieldRuleError(
            f"{what} must be 1 to {_NAME_LENGTH} characters, without NUL"
        )


class WaitlistRulesAdminService:
    """The `ctms waitlists rules` commands. Each method is one transaction."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow_factory = uow_factory

    async def list(self) -> list[WaitlistFieldRule]:
        """Every rule, ordered by waitlist then field."""
        async with self._uow_factory() as uow:
            return await uow.waitlist_rules.list()

    async def set(
        self, waitlist: str, field: str, *, max_length: int, required: bool = False
    ) -> WaitlistFieldRule:
        """Add or replace the rule for key `field` of the `fields` of waitlist `waitlist` (`*`: every
        waitlist without rules of its own).

        Business rules (docs/waitlists.md):
        * `max_length` is 1 to 2147483647; names are 1 to 255 characters.
        * The first rule of a waitlist closes it: its `fields` then accept only the keys it has rules for
          (any other key is a 422 `extra fields not permitted`).
        * `required`: the key must be present and not null in every POST/PUT item of that waitlist and in
          every PATCH item that carries `fields`.
        * Only writes are validated, and only once each API process has refreshed its rules (within
          `CTMS_WAITLIST_RULES_CACHE_SECONDS`). Stored contacts are neither checked nor changed: reading a
          contact whose fields break a newer rule never fails; writing such fields back (a PUT, or a PATCH
          carrying them) is a 422 until they are fixed.
        """
        _check_name("The waitlist name", waitlist)
        _check_name("The field name", field)
        if not 1 <= max_length <= MAX_RULE_LENGTH:
            raise InvalidWaitlistFieldRuleError(
                f"The maximum length must be between 1 and {MAX_RULE_LENGTH}, got {max_length}"
            )
        rule = WaitlistFieldRule(
            waitlist=waitlist, field=field, max_length=max_length, required=required
        )
        async with self._uow_factory() as uow:
            await uow.waitlist_rules.set(rule)
            await uow.commit()
        return rule

    async def remove(self, waitlist: str, field: str) -> None:
        """Remove the rule for key `field` of waitlist `waitlist`; `WaitlistFieldRuleNotFoundError` when
        there is none. Removing the last rule of a waitlist opens it again: any key is then accepted, and
        the `*` rules check the keys they name. Effective once the API processes refresh their rules."""
        async with self._uow_factory() as uow:
            removed = await uow.waitlist_rules.remove(waitlist, field)
            await uow.commit()
        if not removed:
            raise WaitlistFieldRuleNotFoundError(
                f"No rule for field {field!r} of waitlist {waitlist!r}"
            )


class CachedWaitlistRules:
    """The rules an API process validates waitlist `fields` with, read from storage at most once per
    `refresh_interval` (`CTMS_WAITLIST_RULES_CACHE_SECONDS`), so that validation adds no database round
    trip to a request (docs/waitlists.md). A rule changed with the CLI is therefore enforced by every API
    process within that interval, without a restart.

    Rules: the first call reads the rules (a storage failure then propagates, as any other read's would).
    Later, the first call at or after the expiry reads them again while concurrent calls keep using the
    previous snapshot; when that read fails, the previous snapshot is kept for another interval and a
    warning is logged. An interval of zero reads the rules on every call.
    """

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], clock: Clock, refresh_interval: timedelta
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._rules: WaitlistFieldRules | None = None
        self._expires_at: datetime | None = None
        self._refreshing = False

    async def current(self) -> WaitlistFieldRules:
        rules, expires_at = self._rules, self._expires_at
        if (
            rules is not None
            and expires_at is not None
            and (self._refreshing or self._clock.now() < expires_at)
        ):
            return rules
        return await self._refresh()

    async def _refresh(self) -> WaitlistFieldRules:
        self._refreshing = True
        try:
            async with self._uow_factory() as uow:
                rules = WaitlistFieldRules(await uow.waitlist_rules.list())
        except Exception:
            if self._rules is None:
                raise
            logger.warning("Could not refresh the waitlist field rules; keeping the previous ones")
            rules = self._rules
        finally:
            self._refreshing = False
        self._rules = rules
        self._expires_at = self._clock.now() + self._refresh_interval
        return rules
