"""The `ctms` command line against a real PostgreSQL: migrations and API-client administration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Protocol

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.migrations import check, current, head, script_location, upgrade
from ctms_entrypoints.cli.main import cli
from tests.support.database import throwaway_database


class Ctms(Protocol):
    async def __call__(self, *args: str, input: str | None = None) -> Result: ...


@pytest.fixture
def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    """Run `ctms ARGS...` on the test database, in a thread (the commands run their own event loop)."""
    runner = CliRunner()
    environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}

    async def invoke(*args: str, input: str | None = None) -> Result:
        return await asyncio.to_thread(runner.invoke, cli, list(args), env=environment, input=input)

    return invoke


async def test_db_commands_report_the_head_and_no_drift(ctms: Ctms) -> None:
    current = await ctms("db", "current")
    assert current.exit_code == 0, current.output
    assert current.output.strip() == head()
    check = await ctms("db", "check")
    assert check.exit_code == 0, check.output
    assert "agree" in check.output
    upgrade = await ctms("db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.output


async def test_client_lifecycle(ctms: Ctms) -> None:
    created = await ctms("clients", "create", "basket", "--email", "basket@example.com", "--json")
    assert created.exit_code == 0, created.output
    credentials = json.loads(created.output)
    assert credentials["client_id"] == "id_basket"
    assert credentials["client_secret"].startswith("secret_")
    assert len(credentials["client_secret"]) == 50

    listed = await ctms("clients", "list", "--json")
    [client] = json.loads(listed.output)
    assert (client["client_id"], client["email"], client["enabled"]) == (
        "id_basket",
        "basket@example.com",
        True,
    )

    disabled = await ctms("clients", "disable", "basket")
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    text_list = await ctms("clients", "list")
    assert "- id_basket (basket@example.com) - Disabled" in text_list.output
    again = await ctms("clients", "disable", "id_basket")
    assert "already disabled" in again.output
    enabled = await ctms("clients", "enable", "basket")
    assert enabled.exit_code == 0

    rotated = await ctms("clients", "rotate-secret", "basket", "--json")
    assert rotated.exit_code == 0
    assert json.loads(rotated.output)["client_secret"] != credentials["client_secret"]


async def test_human_credentials_block_shows_curl_examples(ctms: Ctms) -> None:
    created = await ctms("clients", "create", "mofo", "-e", "mofo@example.com")
    assert created.exit_code == 0
    assert "client_id: id_mofo" in created.output
    assert "grant_type=client_credentials" in created.output
    assert "/token" in created.output


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("clients", "create", "bad name!", "--email", "x@example.com"), 2, "alphanumeric"),
        (("clients", "create", "ok", "--email", "not-an-email"), 2, "email"),
        (("clients", "enable", "nobody"), 4, "Unknown API client"),
        (("clients", "rotate-secret", "nobody"), 4, "Unknown API client"),
    ],
)
async def test_client_command_errors_have_distinct_exit_codes(
    ctms: Ctms, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    result = await ctms(*args)
    assert result.exit_code == exit_code, result.output
    assert message in result.output


async def test_creating_an_existing_client_is_a_conflict(ctms: Ctms) -> None:
    assert (await ctms("clients", "create", "dup", "--email", "a@example.com")).exit_code == 0
    duplicate = await ctms("clients", "create", "id_dup", "--email", "b@example.com")
    assert duplicate.exit_code == 10
    assert "already exists" in duplicate.output


def _our_revisions_oldest_first() -> list[str]:
    scripts = ScriptDirectory(str(script_location()))
    return [script.revision for script in scripts.walk_revisions()][::-1]


async def test_db_history_lists_the_revisions_and_marks_the_current_one(ctms: Ctms) -> None:
    result = await ctms("db", "history")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    current_rows = [row for row in rows if row[0] == "*"]
    assert [row[1] for row in current_rows] == [head()]
    listed = [row[1] if row[0] == "*" else row[0] for row in rows]
    assert listed == _our_revisions_oldest_first()
    assert all("expand" in row and "applied" in row for row in rows)  # every revision so far adds


@pytest.fixture
def fresh_url(database_url: str) -> Iterator[str]:
    with throwaway_database(database_url, origin="the integration tests' server") as url:
        yield url


def test_db_stamp_records_a_revision_without_migrating(fresh_url: str) -> None:
    runner = CliRunner()
    environment = {"CTMS_DB_URL": fresh_url}
    *_, previous, newest = _our_revisions_oldest_first()
    upgrade(fresh_url, previous)

    stamped = runner.invoke(cli, ["db", "stamp", newest], env=environment)
    assert stamped.exit_code == 0, stamped.output
    assert stamped.output.strip() == (
        f"Stamped the database at {newest} (it was at {previous}); no migration ran."
    )
    assert current(fresh_url) == newest
    assert check(fresh_url)  # the newest revision's changes were not made

    unknown = runner.invoke(cli, ["db", "stamp", "fd04e56b249e"], env=environment)
    assert unknown.exit_code == 4
    assert "Unknown revision 'fd04e56b249e'" in unknown.output
    assert current(fresh_url) == newest


async def test_clients_delete_asks_first_then_removes_the_client_and_its_roles(
    ctms: Ctms,
) -> None:
    assert (await ctms("clients", "create", "leaving", "-e", "l@example.com")).exit_code == 0
    assert (await ctms("roles", "create", "t-reader")).exit_code == 0
    assert (await ctms("clients", "grant", "leaving", "t-reader")).exit_code == 0

    declined = await ctms("clients", "delete", "leaving", input="n\n")
    assert declined.exit_code == 0
    assert "Operation cancelled." in declined.output
    assert (await ctms("clients", "show", "leaving")).exit_code == 0

    deleted = await ctms("clients", "delete", "leaving", input="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert "✅ Deleted API client 'id_leaving'." in deleted.output
    assert (await ctms("clients", "show", "leaving")).exit_code == 4
    role = await ctms("roles", "show", "t-reader")
    assert "No API clients assigned." in role.output

    again = await ctms("clients", "delete", "-y", "leaving")
    assert again.exit_code == 4
    assert "Unknown API client" in again.output


async def test_clients_set_email_changes_the_owner_address(ctms: Ctms) -> None:
    assert (await ctms("clients", "create", "basket", "-e", "old@example.com")).exit_code == 0
    changed = await ctms("clients", "set-email", "basket", "new@example.com")
    assert changed.exit_code == 0, changed.output
    assert "now has e-mail new@example.com" in changed.output
    assert "Email: new@example.com" in (await ctms("clients", "show", "id_basket")).output
    unchanged = await ctms("clients", "set-email", "basket", "new@example.com")
    assert "already had e-mail" in unchanged.output
    assert (await ctms("clients", "set-email", "basket", "not-an-email")).exit_code == 2
    assert (await ctms("clients", "set-email", "nobody", "n@example.com")).exit_code == 4
    [listed] = json.loads((await ctms("clients", "list", "--json")).output)
    assert (listed["email"], listed["enabled"]) == ("new@example.com", True)
