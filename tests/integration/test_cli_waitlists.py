"""`ctms waitlists rules list|set|remove` against a real PostgreSQL (docs/waitlists.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_core.domain.waitlist_rules import SEEDED_WAITLIST_FIELD_RULES
from ctms_entrypoints.cli.main import cli

pytestmark = pytest.mark.integration

EXIT_USAGE, EXIT_NOT_FOUND = 2, 4


class Ctms:
    def __init__(self, database_url: str) -> None:
        self.environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}

    async def __call__(self, *args: str) -> Result:
        """`ctms waitlists rules ARGS...`, in a thread (the command runs its own event loop)."""
        return await asyncio.to_thread(
            CliRunner().invoke, cli, ["waitlists", "rules", *args], env=self.environment
        )


@pytest.fixture
async def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    """The CLI on the emptied test database holding the seeded rules."""
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:
        for rule in SEEDED_WAITLIST_FIELD_RULES:
            await uow.waitlist_rules.set(rule)
        await uow.commit()
    return Ctms(database_url)


async def _listed(ctms: Ctms) -> list[dict[str, object]]:
    result = await ctms("list", "--json")
    assert result.exit_code == 0, result.output
    listed: list[dict[str, object]] = json.loads(result.output)
    return listed


async def test_list_shows_the_seeded_rules_as_a_table_and_as_json(ctms: Ctms) -> None:
    table = await ctms("list")
    assert table.exit_code == 0, table.output
    assert table.output.splitlines() == [
        "WAITLIST  FIELD     MAX LENGTH  REQUIRED",
        "*         geo       100         no",
        "*         platform  100         no",
        "relay     geo       100         no",
        "vpn       geo       100         no",
        "vpn       platform  100         no",
        "(* = every waitlist without rules of its own)",
    ]
    assert await _listed(ctms) == [
        {"waitlist": r.waitlist, "field": r.field, "max_length": r.max_length, "required": False}
        for r in SEEDED_WAITLIST_FIELD_RULES
    ]


async def test_set_adds_and_replaces_a_rule_and_remove_deletes_it(ctms: Ctms) -> None:
    added = await ctms("set", "monitor", "tier", "--max-length", "12", "--required")
    assert added.exit_code == 0, added.output
    assert added.output.startswith("Set monitor.tier: at most 12 characters, required.")
    assert {"waitlist": "monitor", "field": "tier", "max_length": 12, "required": True} in (
        await _listed(ctms)
    )

    replaced = await ctms("set", "monitor", "tier", "--max-length", "5", "--optional")
    assert replaced.exit_code == 0, replaced.output
    monitor = [rule for rule in await _listed(ctms) if rule["waitlist"] == "monitor"]
    assert monitor == [{"waitlist": "monitor", "field": "tier", "max_length": 5, "required": False}]

    removed = await ctms("remove", "monitor", "tier")
    assert removed.exit_code == 0, removed.output
    assert not [rule for rule in await _listed(ctms) if rule["waitlist"] == "monitor"]


async def test_removing_an_unknown_rule_exits_not_found(ctms: Ctms) -> None:
    result = await ctms("remove", "vpn", "tier")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "No rule for field 'tier' of waitlist 'vpn'" in result.output


@pytest.mark.parametrize("max_length", ["0", "-3"])
async def test_a_rule_that_cannot_be_stored_is_a_usage_error(ctms: Ctms, max_length: str) -> None:
    result = await ctms("set", "vpn", "geo", "--max-length", max_length)
    assert result.exit_code == EXIT_USAGE
    assert "maximum length must be between 1 and" in result.output
    assert await _listed(ctms) == [
        {"waitlist": r.waitlist, "field": r.field, "max_length": r.max_length, "required": False}
        for r in SEEDED_WAITLIST_FIELD_RULES
    ]


async def test_list_says_when_there_is_no_rule(ctms: Ctms) -> None:
    for rule in SEEDED_WAITLIST_FIELD_RULES:
        assert (await ctms("remove", rule.waitlist, rule.field)).exit_code == 0
    result = await ctms("list")
    assert result.output == "No waitlist field rules: every waitlist accepts any key.\n"
    assert await _listed(ctms) == []
