"""`ctms braze newsletters|waitlists list|add|remove` against a real PostgreSQL (docs/braze.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresBrazeSubscriptionGroupRepository
from ctms_core.domain.braze import BrazeConfiguration
from ctms_entrypoints.cli.main import cli

pytestmark = pytest.mark.integration

EXIT_USAGE, EXIT_NOT_FOUND = 2, 4
NEWS_GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"
EFFECT = "The sync worker applies it to the next contacts it sends to Braze."


class Ctms:
    def __init__(self, database_url: str) -> None:
        self.environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}

    async def __call__(self, *args: str) -> Result:
        """`ctms braze ARGS...`, in a thread (the command runs its own event loop)."""
        return await asyncio.to_thread(
            CliRunner().invoke, cli, ["braze", *args], env=self.environment
        )


@pytest.fixture
async def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    return Ctms(database_url)


async def test_newsletters_are_added_replaced_listed_and_removed(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    empty = await ctms("newsletters", "list")
    assert empty.exit_code == 0, empty.output
    assert empty.output == "No newsletter is mapped to a Braze subscription group.\n"

    added = await ctms("newsletters", "add", "firefox-news", "old-group")
    replaced = await ctms("newsletters", "add", "firefox-news", NEWS_GROUP)
    other = await ctms("newsletters", "add", "mozilla-and-you", "g-2")
    assert added.exit_code == replaced.exit_code == other.exit_code == 0, added.output
    assert replaced.output == f"Mapped newsletter 'firefox-news' → '{NEWS_GROUP}'. {EFFECT}\n"

    table = await ctms("newsletters", "list")
    assert table.output.splitlines() == [
        "NEWSLETTER       SUBSCRIPTION GROUP",
        f"firefox-news     {NEWS_GROUP}",
        "mozilla-and-you  g-2",
    ]
    as_json = await ctms("newsletters", "list", "--json")
    assert json.loads(as_json.output) == [
        {"name": "firefox-news", "group_id": NEWS_GROUP},
        {"name": "mozilla-and-you", "group_id": "g-2"},
    ]

    removed = await ctms("newsletters", "remove", "mozilla-and-you")
    assert removed.exit_code == 0, removed.output
    assert removed.output == f"Removed newsletter 'mozilla-and-you' → 'g-2'. {EFFECT}\n"
    # What the Braze destination reads.
    assert await PostgresBrazeSubscriptionGroupRepository(empty_database).load() == (
        BrazeConfiguration(newsletter_groups={"firefox-news": NEWS_GROUP})
    )


async def test_waitlists_are_mapped_apart_from_newsletters(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    assert (await ctms("waitlists", "add", "vpn", "vpn-group")).exit_code == 0
    assert (await ctms("newsletters", "add", "vpn", "news-group")).exit_code == 0

    listed = await ctms("waitlists", "list", "--json")
    assert json.loads(listed.output) == [{"name": "vpn", "group_id": "vpn-group"}]
    assert await PostgresBrazeSubscriptionGroupRepository(empty_database).load() == (
        BrazeConfiguration(
            newsletter_groups={"vpn": "news-group"}, waitlist_groups={"vpn": "vpn-group"}
        )
    )


async def test_removing_an_unmapped_name_exits_not_found(ctms: Ctms) -> None:
    result = await ctms("newsletters", "remove", "firefox-news")

    assert result.exit_code == EXIT_NOT_FOUND
    assert "The newsletter 'firefox-news' is not mapped to a subscription group." in result.output


async def test_an_empty_group_id_is_a_usage_error_and_stores_nothing(ctms: Ctms) -> None:
    result = await ctms("newsletters", "add", "firefox-news", "  ")

    assert result.exit_code == EXIT_USAGE
    assert "The subscription group id must not be empty." in result.output
    assert (await ctms("newsletters", "list", "--json")).output == "[]\n"
