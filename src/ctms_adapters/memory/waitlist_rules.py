"""Waitlist field rules in memory, seeded as migration 0008 seeds the table."""

from __future__ import annotations

from ctms_core.domain.waitlist_rules import SEEDED_WAITLIST_FIELD_RULES, WaitlistFieldRule

WaitlistRuleState = dict[tuple[str, str], WaitlistFieldRule]


def seeded_waitlist_rules() -> WaitlistRuleState:
    return {(rule.waitlist, rule.field): rule for rule in SEEDED_WAITLIST_FIELD_RULES}


class InMemoryWaitlistFieldRuleRepository:
    def __init__(self, rules: WaitlistRuleState) -> None:
        self._rules = rules

    async def list(self) -> list[WaitlistFieldRule]:
        return [self._rules[key] for key in sorted(self._rules)]

    async def set(self, rule: WaitlistFieldRule) -> None:
        self._rules[(rule.waitlist, rule.field)] = rule

    async def remove(self, waitlist: str, field: str) -> bool:
        return self._rules.pop((waitlist, field), None) is not None
