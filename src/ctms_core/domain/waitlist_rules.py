"""Waitlist field rules: which keys a waitlist's `fields` object accepts, how long each value may be, and
whether it is required (docs/waitlists.md, docs/contract.md §5.9).

The rules are data (the `waitlist_field_rules` table, managed with `ctms waitlists rules ...`), so that
validating a new waitlist field needs no deploy. A waitlist with rules of its own is *closed*: its `fields`
accept only the ruled keys. Every other waitlist is *open*: any key is accepted, and the rules of the
pseudo-waitlist `*` (`ANY_OTHER_WAITLIST`) check the keys they name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from ctms_core.domain import fields as f
from ctms_core.domain.errors import FieldError, Location

__all__ = [
    "ANY_OTHER_WAITLIST",
    "MAX_RULE_LENGTH",
    "SEEDED_RULES",
    "SEEDED_WAITLIST_FIELD_RULES",
    "WaitlistFieldRule",
    "WaitlistFieldRules",
]

#: The rules of this pseudo-waitlist apply to every waitlist without rules of its own. (A waitlist literally
#: named `*` therefore cannot have rules of its own.)
ANY_OTHER_WAITLIST: Final = "*"

#: The largest `max_length` a rule may state: the range of the table's integer column.
MAX_RULE_LENGTH: Final = 2**31 - 1


class WaitlistFieldRule(msgspec.Struct, frozen=True, kw_only=True, order=True):
    """One key of one waitlist's `fields`: a text (numbers accepted) of at most `max_length` characters
    or null; when `required`, the key must be present and not null."""

    waitlist: str
    field: str
    max_length: int
    required: bool = False


#: The rules of CTMS v3.3 (docs/contract.md §5.9), which migration 0008 copies into the table and the
#: in-memory store starts with. Declared here once; a test holds the migration's copy equal to it.
SEEDED_WAITLIST_FIELD_RULES: Final[tuple[WaitlistFieldRule, ...]] = (
    WaitlistFieldRule(waitlist=ANY_OTHER_WAITLIST, field="geo", max_length=100),
    WaitlistFieldRule(waitlist=ANY_OTHER_WAITLIST, field="platform", max_length=100),
    WaitlistFieldRule(waitlist="relay", field="geo", max_length=100),
    WaitlistFieldRule(waitlist="vpn", field="geo", max_length=100),
    WaitlistFieldRule(waitlist="vpn", field="platform", max_length=100),
)


class _WaitlistCheck:
    """The rules of one waitlist, prepared for validation: a coercer per ruled key."""

    __slots__ = ("closed", "coercers", "required")

    def __init__(self, rules: Iterable[WaitlistFieldRule], *, closed: bool) -> None:
        rules = tuple(rules)
        self.closed = closed
        self.coercers: dict[str, f.Coercer] = {
            rule.field: f.text(rule.max_length) for rule in rules
        }
        self.required = tuple(rule.field for rule in rules if rule.required)


class WaitlistFieldRules:
    """A set of rules, ready to validate the `fields` of waitlist items (an immutable snapshot)."""

    __slots__ = ("_by_waitlist", "_open", "rules")

    def __init__(self, rules: Iterable[WaitlistFieldRule]) -> None:
        self.rules: tuple[WaitlistFieldRule, ...] = tuple(sorted(rules))
        grouped: dict[str, list[WaitlistFieldRule]] = {}
        for rule in self.rules:
            grouped.setdefault(rule.waitlist, []).append(rule)
        self._open = _WaitlistCheck(grouped.pop(ANY_OTHER_WAITLIST, ()), closed=False)
        self._by_waitlist: Mapping[str, _WaitlistCheck] = {
            waitlist: _WaitlistCheck(rules, closed=True) for waitlist, rules in grouped.items()
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WaitlistFieldRules) and self.rules == other.rules

    def __hash__(self) -> int:
        return hash(self.rules)

    def __repr__(self) -> str:
        return f"WaitlistFieldRules({list(self.rules)!r})"

    def validate(
        self, waitlist: Any, fields_value: Any, loc: Location, errors: list[FieldError]
    ) -> None:
        """Append to `errors` what is wrong with the `fields` of the waitlist item at `loc` named
        `waitlist`. Validation only: the stored JSON stays exactly what was sent."""
        if not isinstance(fields_value, dict):
            return  # already reported by the item's field coercer
        check = (
            self._by_waitlist.get(waitlist) if isinstance(waitlist, str) else None
        ) or self._open
        coercers = check.coercers
        for key, value in fields_value.items():
            coerce = coercers.get(key)
            if coerce is None:
                if check.closed:
                    errors.append(
                        FieldError(
                            (*loc, "fields", key), "extra fields not permitted", "value_error.extra"
                        )
                    )
            elif value is not None:
                try:
                    coerce(value)
                except f.InvalidValue as invalid:
                    errors.append(FieldError((*loc, "fields", key), invalid.msg, invalid.type))
        for key in check.required:
            value = fields_value.get(key, _MISSING)
            if value is _MISSING:
                errors.append(
                    FieldError((*loc, "fields", key), "field required", "value_error.missing")
                )
            elif value is None:
                errors.append(
                    FieldError(
                        (*loc, "fields", key),
                        "none is not an allowed value",
                        "type_error.none.not_allowed",
                    )
                )


_MISSING: Any = object()

#: The rules as seeded, for callers that validate without a rule store (tests, embedders).
SEEDED_RULES: Final = WaitlistFieldRules(SEEDED_WAITLIST_FIELD_RULES)
