"""The `ctms` command line against a real PostgreSQL: migrations and API-client administration."""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.migrations import head
from ctms_entrypoints.cli.main import cli


class Ctms(Protocol):
    async def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    """Run `ctms ARGS...` on the test database, in a thread (the commands run their own event loop)."""
    runner = CliRunner()
    environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}

    async def invoke(*args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, cli, list(args), env=environment)

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
