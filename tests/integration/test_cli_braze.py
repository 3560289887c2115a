"""`ctms braze newsletters|waitlists list|add|remove` and `ctms braze resync` against a real PostgreSQL
(docs/braze.md)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
    PostgresUnitOfWorkFactory,
)
from ctms_core.domain.braze import BrazeConfiguration
from ctms_core.domain.contact import Contact
from ctms_core.services import acoustic_resync
from ctms_entrypoints.cli.main import cli
from tests.builders import make_contact, make_newsletter

pytestmark = pytest.mark.integration

EXIT_USAGE, EXIT_NOT_FOUND = 2, 4
NEWS_GROUP = "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21"
EFFECT = "The sync worker applies it to the next contacts it sends to Braze."


class Ctms:
    def __init__(self, database_url: str) -> None:
        self.environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}

    async def __call__(self, *args: str, answer: str | None = None) -> Result:
        """`ctms braze ARGS...`, in a thread (the command runs its own event loop); `answer` is typed
        at its prompt."""
        return await asyncio.to_thread(
            CliRunner().invoke, cli, ["braze", *args], env=self.environment, input=answer
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


# --- resync ---------------------------------------------------------------------------------------------


async def _stored(engine: AsyncEngine, *contacts: Contact) -> PostgresBrazeDigestStore:
    """The contacts, stored with the digests of a delivery to Braze, and nothing queued."""
    async with PostgresUnitOfWorkFactory(engine)() as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
        await uow.commit()
    digests = PostgresBrazeDigestStore(engine)
    await digests.save({contact.email_id: {"first_name": "d1"} for contact in contacts})
    return digests


async def _queued(engine: AsyncEngine) -> set[tuple[str, uuid.UUID]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT destination, email_id FROM pending_sync UNION ALL "
                "SELECT 'inlet', email_id FROM pending_acoustic"
            )
        )
        return {(row.destination, row.email_id) for row in rows}


async def test_resync_sends_the_selected_contacts_to_braze_alone_and_in_full(
    ctms: Ctms, empty_database: AsyncEngine, tmp_path: Path
) -> None:
    subscribed = make_contact(newsletters=(make_newsletter("firefox-news"),))
    by_address = make_contact(primary_email="Mixed.Case@example.com")
    untouched = make_contact()
    digests = await _stored(empty_database, subscribed, by_address, untouched)

    by_newsletter = await ctms("resync", "--newsletter", "firefox-news", "-y")
    assert by_newsletter.exit_code == 0, by_newsletter.output
    assert by_newsletter.output.endswith(
        "Scheduled 1 contacts for Braze (sent in full on the next passes).\n"
    )
    addresses = tmp_path / "addresses.txt"
    addresses.write_text("mixed.case@EXAMPLE.com\nnobody@example.com\n")
    by_file = await ctms("resync", "--email-file", str(addresses))
    assert by_file.exit_code == 0, by_file.output
    assert "nobody@example.com not found in CTMS" in by_file.output

    assert await _queued(empty_database) == {
        ("braze", subscribed.email_id),
        ("braze", by_address.email_id),
    }
    remaining = await digests.load([c.email_id for c in (subscribed, by_address, untouched)])
    assert set(remaining) == {untouched.email_id}


async def test_a_contact_both_in_the_file_and_in_the_selection_is_scheduled_and_counted_once(
    ctms: Ctms, empty_database: AsyncEngine, tmp_path: Path
) -> None:
    subscribed = make_contact(
        primary_email="news@example.com", newsletters=(make_newsletter("firefox-news"),)
    )
    other = make_contact(primary_email="other@example.com")
    await _stored(empty_database, subscribed, other)
    addresses = tmp_path / "addresses.txt"
    addresses.write_text("news@example.com\nother@example.com\n")

    result = await ctms(
        "resync", "--email-file", str(addresses), "--newsletter", "firefox-news", "-y"
    )

    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "Scheduled 2 contacts for Braze (sent in full on the next passes).\n"
    )
    assert await _queued(empty_database) == {
        ("braze", subscribed.email_id),
        ("braze", other.email_id),
    }


async def test_resync_of_every_contact_asks_first_and_a_no_changes_nothing(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    contact = make_contact()
    digests = await _stored(empty_database, contact)
    declined = await ctms("resync", "--all", answer="n\n")
    assert declined.exit_code == 0, declined.output
    assert "Send every contact to Braze again, in full. Continue?" in declined.output
    assert declined.output.endswith("Operation cancelled.\n")
    assert await _queued(empty_database) == set()
    assert set(await digests.load([contact.email_id])) == {contact.email_id}

    accepted = await ctms("resync", "--all", answer="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert await _queued(empty_database) == {("braze", contact.email_id)}


async def test_resync_of_every_contact_walks_them_page_by_page(
    ctms: Ctms, empty_database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    contacts = [make_contact() for _ in range(5)]
    await _stored(empty_database, *contacts)
    monkeypatch.setattr(acoustic_resync, "SELECTION_PAGE", 2)
    result = await ctms("resync", "--all", "-y")
    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if line.startswith("Scheduled ")]
    assert progress == [
        "Scheduled 2 contacts…",
        "Scheduled 4 contacts…",
        "Scheduled 5 contacts…",
        "Scheduled 5 contacts for Braze (sent in full on the next passes).",
    ]
    assert await _queued(empty_database) == {("braze", c.email_id) for c in contacts}


async def test_resync_needs_a_selection_and_a_known_newsletter(ctms: Ctms) -> None:
    assert (await ctms("resync")).exit_code == EXIT_USAGE
    unknown = await ctms("resync", "--newsletter", "no-such-newsletter", "-y")
    assert unknown.exit_code == EXIT_NOT_FOUND
    assert "Unknown newsletter 'no-such-newsletter'" in unknown.output
