"""Waitlist field rules as data (docs/waitlists.md): seeded with v3.3's rules, changed by the admin use
case, and applied to new writes through a snapshot each API process refreshes once per interval."""

from __future__ import annotations

import importlib.util
import logging
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork
from ctms_adapters.memory.clock import ManualClock
from ctms_core.domain.errors import ValidationFailedError
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_core.domain.waitlist_rules import (
    ANY_OTHER_WAITLIST,
    MAX_RULE_LENGTH,
    SEEDED_WAITLIST_FIELD_RULES,
    WaitlistFieldRule,
    WaitlistFieldRules,
)
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.waitlist_rules import (
    CachedWaitlistRules,
    InvalidWaitlistFieldRuleError,
    WaitlistFieldRuleNotFoundError,
    WaitlistRulesAdminService,
)

MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0008_waitlist_field_rules.py"
INTERVAL = timedelta(seconds=60)


def _migration_0008() -> Any:
    spec = importlib.util.spec_from_file_location("migration_0008", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _body(*waitlists: dict[str, Any]) -> dict[str, Any]:
    return {"email": {"primary_email": "rules@example.com"}, "waitlists": list(waitlists)}


def _errors(
    body: dict[str, Any], rules: WaitlistFieldRules, *, patch: bool = False
) -> list[tuple[tuple[Any, ...], str, str]]:
    """The (loc, msg, type) of every error of `body`, [] when it is valid."""
    try:
        if patch:
            parse_contact_patch(body, waitlist_rules=rules)
        else:
            parse_contact_input(body, require_email_id=False, waitlist_rules=rules)
    except ValidationFailedError as failed:
        return [(error.loc, error.msg, error.type) for error in failed.errors]
    return []


class Storage:
    """A memory store, its admin use case and an API process's rule cache on a manual clock; counts the
    units of work the cache opens."""

    def __init__(self, interval: timedelta = INTERVAL) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock()
        self.reads = 0
        self.failing = False
        self.admin = WaitlistRulesAdminService(lambda: InMemoryUnitOfWork(self.store))
        self.cache = CachedWaitlistRules(self._counted_uow, self.clock, interval)

    def _counted_uow(self) -> UnitOfWork:
        self.reads += 1
        if self.failing:
            return _UnreachableUnitOfWork()  # type: ignore[return-value]
        return InMemoryUnitOfWork(self.store)


class _UnreachableUnitOfWork:
    async def __aenter__(self) -> Self:
        raise ConnectionRefusedError("database down")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


@pytest.fixture
def storage() -> Storage:
    return Storage()


def test_the_migration_seeds_exactly_the_rules_the_core_declares() -> None:
    """Migration 0008 keeps its own literal copy of the seed (migrations are self-contained)."""
    seeded = tuple(
        WaitlistFieldRule(waitlist=w, field=f, max_length=n, required=r)
        for w, f, n, r in _migration_0008().SEEDED_RULES
    )
    assert seeded == SEEDED_WAITLIST_FIELD_RULES


async def test_a_new_store_holds_the_seeded_rules(storage: Storage) -> None:
    assert await storage.admin.list() == sorted(SEEDED_WAITLIST_FIELD_RULES)


async def test_the_seeded_rules_from_storage_answer_v33s_errors(storage: Storage) -> None:
    """docs/contract.md §5.9: the exact messages, types and locations of v3.3, from the stored rules."""
    rules = await storage.cache.current()
    body = _body(
        {"name": "vpn", "fields": {"geo": "g" * 101, "extra": "x", "platform": None}},
        {"name": "relay", "fields": {"geo": "fr", "platform": "win"}},
        {"name": "relay-vpn", "fields": {"platform": "p" * 101, "anything": [1]}},
    )
    assert _errors(body, rules) == [
        (
            ("body", "waitlists", 0, "fields", "geo"),
            "ensure this value has at most 100 characters",
            "value_error.any_str.max_length",
        ),
        (
            ("body", "waitlists", 0, "fields", "extra"),
            "extra fields not permitted",
            "value_error.extra",
        ),
        (
            ("body", "waitlists", 1, "fields", "platform"),
            "extra fields not permitted",
            "value_error.extra",
        ),
        (
            ("body", "waitlists", 2, "fields", "platform"),
            "ensure this value has at most 100 characters",
            "value_error.any_str.max_length",
        ),
    ]
    assert _errors(body, rules, patch=True) == _errors(body, rules)


async def test_a_rule_set_is_enforced_and_a_removed_one_no_longer(storage: Storage) -> None:
    body = _body({"name": "vpn", "fields": {"geo": "fr", "platform": "windows,android,linux"}})
    await storage.admin.set("vpn", "platform", max_length=10)
    storage.clock.advance(INTERVAL)
    assert _errors(body, await storage.cache.current()) == [
        (
            ("body", "waitlists", 0, "fields", "platform"),
            "ensure this value has at most 10 characters",
            "value_error.any_str.max_length",
        )
    ]

    await storage.admin.remove("vpn", "platform")
    storage.clock.advance(INTERVAL)
    rules = await storage.cache.current()
    # vpn keeps its `geo` rule, so it stays closed: `platform` is now an extra key.
    assert [msg for _, msg, _ in _errors(body, rules)] == ["extra fields not permitted"]
    await storage.admin.remove("vpn", "geo")
    storage.clock.advance(INTERVAL)
    assert _errors(body, await storage.cache.current()) == []


async def test_the_first_rule_of_a_waitlist_closes_it_and_removing_the_last_reopens_it(
    storage: Storage,
) -> None:
    body = _body({"name": "monitor", "fields": {"tier": "gold", "geo": "fr"}})
    assert _errors(body, await storage.cache.current()) == []

    await storage.admin.set("monitor", "tier", max_length=10)
    storage.clock.advance(INTERVAL)
    assert _errors(body, await storage.cache.current()) == [
        (
            ("body", "waitlists", 0, "fields", "geo"),
            "extra fields not permitted",
            "value_error.extra",
        )
    ]

    await storage.admin.remove("monitor", "tier")
    storage.clock.advance(INTERVAL)
    assert _errors(body, await storage.cache.current()) == []


async def test_the_any_other_waitlist_rules_check_open_waitlists(storage: Storage) -> None:
    await storage.admin.set(ANY_OTHER_WAITLIST, "geo", max_length=2)
    storage.clock.advance(INTERVAL)
    rules = await storage.cache.current()
    assert [
        loc for loc, _, _ in _errors(_body({"name": "monitor", "fields": {"geo": "fra"}}), rules)
    ] == [("body", "waitlists", 0, "fields", "geo")]
    # vpn has rules of its own: the `*` rule does not apply to it.
    assert _errors(_body({"name": "vpn", "fields": {"geo": "fra"}}), rules) == []


async def test_a_required_field_must_be_present_and_not_null(storage: Storage) -> None:
    await storage.admin.set("monitor", "tier", max_length=10, required=True)
    storage.clock.advance(INTERVAL)
    rules = await storage.cache.current()

    missing = _body({"name": "monitor", "fields": {}}, {"name": "monitor-2"}, {"name": "monitor"})
    assert _errors(missing, rules) == [
        (("body", "waitlists", 0, "fields", "tier"), "field required", "value_error.missing"),
        (("body", "waitlists", 2, "fields", "tier"), "field required", "value_error.missing"),
        (
            ("body", "waitlists", 2, "name"),
            "duplicate waitlist name 'monitor': each name may appear once",
            "value_error.duplicate",
        ),
    ]
    null = _body({"name": "monitor", "fields": {"tier": None}})
    assert _errors(null, rules) == [
        (
            ("body", "waitlists", 0, "fields", "tier"),
            "none is not an allowed value",
            "type_error.none.not_allowed",
        )
    ]
    assert _errors(_body({"name": "monitor", "fields": {"tier": "gold"}}), rules) == []
    # A PATCH item without `fields` keeps the stored ones: nothing to check.
    assert (
        _errors({"waitlists": [{"name": "monitor", "subscribed": False}]}, rules, patch=True) == []
    )
    assert [
        msg
        for _, msg, _ in _errors(
            {"waitlists": [{"name": "monitor", "fields": {}}]}, rules, patch=True
        )
    ] == ["field required"]


async def test_setting_a_rule_again_replaces_it(storage: Storage) -> None:
    await storage.admin.set("vpn", "geo", max_length=2, required=True)
    assert (
        WaitlistFieldRule(waitlist="vpn", field="geo", max_length=2, required=True)
        in await storage.admin.list()
    )
    await storage.admin.set("vpn", "geo", max_length=5)
    rules = [rule for rule in await storage.admin.list() if rule.waitlist == "vpn"]
    assert WaitlistFieldRule(waitlist="vpn", field="geo", max_length=5) in rules
    assert len(rules) == 2


@pytest.mark.parametrize(
    ("waitlist", "field", "max_length"),
    [
        ("vpn", "geo", 0),
        ("vpn", "geo", -1),
        ("vpn", "geo", MAX_RULE_LENGTH + 1),
        ("", "geo", 10),
        ("vpn", "", 10),
        ("w" * 256, "geo", 10),
        ("vpn", "f" * 256, 10),
        ("vpn\x00", "geo", 10),
    ],
)
async def test_rules_that_cannot_be_stored_are_refused(
    storage: Storage, waitlist: str, field: str, max_length: int
) -> None:
    with pytest.raises(InvalidWaitlistFieldRuleError):
        await storage.admin.set(waitlist, field, max_length=max_length)
    assert await storage.admin.list() == sorted(SEEDED_WAITLIST_FIELD_RULES)


async def test_removing_an_unknown_rule_is_not_found(storage: Storage) -> None:
    with pytest.raises(WaitlistFieldRuleNotFoundError):
        await storage.admin.remove("vpn", "tier")


async def test_the_cache_reads_storage_once_per_interval(storage: Storage) -> None:
    """No database round trip per write: a change shows only once the interval has passed."""
    first = await storage.cache.current()
    await storage.admin.set("vpn", "geo", max_length=2)
    storage.clock.advance(INTERVAL - timedelta(microseconds=1))
    for _ in range(5):
        assert await storage.cache.current() is first
    assert storage.reads == 1

    storage.clock.advance(timedelta(microseconds=1))
    refreshed = await storage.cache.current()
    assert WaitlistFieldRule(waitlist="vpn", field="geo", max_length=2) in refreshed.rules
    assert storage.reads == 2


async def test_an_interval_of_zero_reads_the_rules_on_every_call() -> None:
    storage = Storage(interval=timedelta(0))
    await storage.cache.current()
    await storage.admin.set("vpn", "geo", max_length=2)
    assert (
        WaitlistFieldRule(waitlist="vpn", field="geo", max_length=2)
        in (await storage.cache.current()).rules
    )
    assert storage.reads == 2


async def test_a_failed_refresh_keeps_the_previous_rules_for_another_interval(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    first = await storage.cache.current()
    storage.failing = True
    storage.clock.advance(INTERVAL)
    with caplog.at_level(logging.WARNING, logger="ctms.waitlist_rules"):
        assert await storage.cache.current() is first
    assert "Could not refresh the waitlist field rules" in caplog.text
    assert await storage.cache.current() is first
    assert storage.reads == 2  # the failed read is not retried before the next interval

    storage.failing = False
    storage.clock.advance(INTERVAL)
    assert await storage.cache.current() == first
    assert storage.reads == 3


async def test_a_failed_first_read_fails_like_any_other_read(storage: Storage) -> None:
    storage.failing = True
    with pytest.raises(ConnectionRefusedError):
        await storage.cache.current()
