"""`ctms acoustic ...` and `ctms healthcheck-sync` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_core.domain.acoustic import AcousticDeletion, default_configuration, map_contact
from ctms_core.domain.contact import Contact
from ctms_core.services import acoustic_resync
from ctms_entrypoints.cli.main import cli
from tests.builders import make_contact, make_newsletter, make_waitlist
from tests.support.acoustic_sync import seed_acoustic_configuration

pytestmark = pytest.mark.integration


class Ctms(Protocol):
    async def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result: ...


@pytest.fixture
def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    """Run `ctms ARGS...` on the test database, in a thread (the commands run their own event loop)."""
    runner = CliRunner()

    async def invoke(
        *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result:
        environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests", **(env or {})}
        return await asyncio.to_thread(runner.invoke, cli, list(args), env=environment, input=input)

    return invoke


async def test_fields_can_be_added_listed_and_removed(ctms: Ctms) -> None:
    assert (
        await ctms("acoustic", "fields", "add", "fxa_lang")
    ).output == "Added 'main.fxa_lang'.\n"
    added = await ctms("acoustic", "fields", "add", "--table", "waitlist", "geo")
    assert added.exit_code == 0
    listed = await ctms("acoustic", "fields", "list")
    assert listed.output.splitlines() == ["- main.fxa_lang", "- waitlist.geo"]
    removed = await ctms("acoustic", "fields", "remove", "fxa_lang")
    assert removed.output == "Removed 'main.fxa_lang'.\n"
    unknown = await ctms("acoustic", "fields", "remove", "fxa_lang")
    assert unknown.exit_code == 4
    assert "Unknown field 'main.fxa_lang'" in unknown.output


async def test_newsletter_mappings_can_be_added_listed_and_removed(ctms: Ctms) -> None:
    added = await ctms("acoustic", "newsletters", "add", "mozilla-rally:sub_rally")
    assert added.exit_code == 0, added.output
    listed = await ctms("acoustic", "newsletters", "list")
    assert "- 'mozilla-rally' → 'sub_rally'" in listed.output
    removed = await ctms("acoustic", "newsletters", "remove", "mozilla-rally")
    assert removed.output == "Removed 'mozilla-rally' → 'sub_rally'.\n"
    assert (await ctms("acoustic", "newsletters", "remove", "mozilla-rally")).exit_code == 4


async def _route(uow_factory: PostgresUnitOfWorkFactory, now: datetime) -> None:
    """What a worker pass does first: the queued contacts reach the acoustic destination's rows."""
    async with uow_factory() as uow:
        await uow.sync_queue.route(("acoustic",), limit=100, now=now)
        await uow.commit()


async def test_failed_contacts_are_listed_and_resynced(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    contact = make_contact(primary_email="Failing.Contact@example.com")
    uow_factory = PostgresUnitOfWorkFactory(empty_database)
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.sync_queue.enqueue(contact.email_id, now)
        await uow.commit()
    await _route(uow_factory, now)
    for attempt in range(6):  # the default retry limit, then given up
        async with uow_factory() as uow:
            await uow.sync_queue.fail(
                "acoustic",
                contact.email_id,
                1,
                f"Fault {attempt}",
                now,
                now=now,
                give_up=attempt == 5,
            )
            await uow.commit()

    failed = await ctms("acoustic", "failed")
    assert failed.exit_code == 0
    assert f"- {contact.email_id} (sync, 6 tries): Fault 5" in failed.output

    resynced = await ctms("acoustic", "resync", "--all-failed")
    assert resynced.output.endswith("Queued 1 contacts for sync.\n")
    assert (await ctms("acoustic", "failed")).output == "No contact past the retry limit.\n"


async def test_failed_contacts_are_listed_without_the_addresses_their_errors_quote(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    """An error stored before upstream text was redacted at the source is printed redacted."""
    contact = make_contact(primary_email="quoted.contact@example.com")
    uow_factory = PostgresUnitOfWorkFactory(empty_database)
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.sync_queue.enqueue(contact.email_id, now)
        await uow.commit()
    await _route(uow_factory, now)
    for attempt in range(6):  # the default retry limit, then given up
        async with uow_factory() as uow:
            fault = "AcousticFault('Recipient quoted.contact@example.com rejected')"
            await uow.sync_queue.fail(
                "acoustic", contact.email_id, 1, fault, now, now=now, give_up=attempt == 5
            )
            await uow.commit()

    failed = await ctms("acoustic", "failed")
    assert failed.exit_code == 0
    assert "AcousticFault('Recipient [OMITTED] rejected')" in failed.output
    assert "quoted.contact@example.com" not in failed.output


async def test_resync_by_email_file_matches_ignoring_case(
    ctms: Ctms, tmp_path: Path, empty_database: AsyncEngine
) -> None:
    contact = make_contact(primary_email="Resync.Me@example.com")
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    emails = tmp_path / "emails.txt"
    emails.write_text("resync.me@EXAMPLE.com\nnobody@example.com\n")
    result = await ctms("acoustic", "resync", "--email-file", str(emails))
    assert result.exit_code == 0
    assert "nobody@example.com not found in CTMS" in result.output
    assert result.output.endswith("Queued 1 contacts for sync.\n")
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:
        counts = await uow.sync_queue.counts("acoustic")
    assert counts.backlog == 1


async def test_resync_needs_exactly_one_source(ctms: Ctms) -> None:
    assert (await ctms("acoustic", "resync")).exit_code == 2


async def test_healthcheck_passes_on_a_fresh_file_and_fails_on_an_old_one(
    ctms: Ctms, tmp_path: Path
) -> None:
    path = tmp_path / "healthcheck"
    env = {"CTMS_BACKGROUND_HEALTHCHECK_PATH": str(path), "CTMS_BACKGROUND_HEALTHCHECK_AGE_S": "30"}
    path.write_text(datetime.now(UTC).isoformat())
    fresh = await ctms("healthcheck-sync", env=env)
    assert fresh.exit_code == 0, fresh.output
    assert fresh.output.startswith("Healthcheck passed")
    path.write_text((datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    stale = await ctms("healthcheck-sync", env=env)
    assert stale.exit_code == 1
    assert "Healthcheck failed" in stale.output
    path.unlink()
    assert (await ctms("healthcheck-sync", env=env)).exit_code == 1


async def test_healthcheck_checks_the_loop_of_every_enabled_destination(
    ctms: Ctms, tmp_path: Path
) -> None:
    path = tmp_path / "healthcheck"
    env = {
        "CTMS_BACKGROUND_HEALTHCHECK_PATH": str(path),
        "CTMS_BACKGROUND_HEALTHCHECK_AGE_S": "30",
        "CTMS_SYNC_DESTINATIONS": "acoustic,braze",
    }
    path.write_text(datetime.now(UTC).isoformat())
    braze = tmp_path / "healthcheck.braze"
    braze.write_text((datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    stale = await ctms("healthcheck-sync", env=env)
    assert stale.exit_code == 1
    assert "Healthcheck failed (braze)" in stale.output
    braze.write_text(datetime.now(UTC).isoformat())
    fresh = await ctms("healthcheck-sync", env=env)
    assert fresh.exit_code == 0, fresh.output
    assert "acoustic age" in fresh.output and "braze age" in fresh.output


async def test_failed_shows_how_long_the_oldest_erasure_has_waited(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    """Erasures are never given up; `failed` says how long the oldest one has waited instead."""
    queued_at = datetime.now(UTC) - timedelta(hours=2)
    deletion = AcousticDeletion(email_id=uuid.uuid4(), primary_email="gone@example.com")
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:
        await uow.sync_queue.enqueue_erasure(deletion, queued_at)
        await uow.commit()
    failed = await ctms("acoustic", "failed")
    assert failed.exit_code == 0
    assert "No contact past the retry limit." in failed.output
    waited = re.search(r"Oldest erasure waiting for acoustic: queued (\d+) s ago", failed.output)
    assert waited is not None, failed.output
    assert 7200 <= int(waited.group(1)) < 7200 + 600
    assert "gone@example.com" not in failed.output


async def _contacts_with_lists(engine: AsyncEngine) -> list[Contact]:
    """Three contacts: one subscribed to firefox-news, one unsubscribed from it, one on the vpn
    waitlist (unsubscribed); every one queued with retries counted."""
    contacts = [
        make_contact(
            primary_email="news@example.com", newsletters=(make_newsletter("firefox-news"),)
        ),
        make_contact(
            primary_email="former@example.com",
            newsletters=(make_newsletter("firefox-news", subscribed=False),),
        ),
        make_contact(
            primary_email="vpn@example.com",
            waitlists=(make_waitlist("vpn", subscribed=False, fields={"geo": "fr"}),),
        ),
    ]
    factory = PostgresUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    async with factory() as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, now)
        await uow.commit()
    await _route(factory, now)
    for contact in contacts:
        for _ in range(2):
            async with factory() as uow:
                await uow.sync_queue.fail(
                    "acoustic", contact.email_id, 1, "Fault", now + timedelta(hours=1), now=now
                )
                await uow.commit()
    return contacts


async def _retries(engine: AsyncEngine) -> dict[str, int]:
    """The acoustic destination's retries, once a worker pass routed what was queued since."""
    await _route(PostgresUnitOfWorkFactory(engine), datetime.now(UTC))
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT email_id, retry FROM pending_sync WHERE destination = 'acoustic'")
        )
        return {str(email_id): retry for email_id, retry in rows}


async def test_resync_by_newsletter_queues_its_subscribers_after_confirmation(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    news, former, vpn = await _contacts_with_lists(empty_database)

    declined = await ctms("acoustic", "resync", "--newsletter", "firefox-news", input="n\n")
    assert "Force resync of 1 contacts" in declined.output
    assert "Operation cancelled." in declined.output
    assert (await _retries(empty_database))[str(news.email_id)] == 2

    accepted = await ctms("acoustic", "resync", "--newsletter", "firefox-news", "-y")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.output.endswith("Queued 1 contacts for sync.\n")
    assert await _retries(empty_database) == {
        str(news.email_id): 0,
        str(former.email_id): 2,
        str(vpn.email_id): 2,
    }


async def test_resync_by_waitlist_takes_every_entry_and_unknown_names_fail(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    _, _, vpn = await _contacts_with_lists(empty_database)

    result = await ctms("acoustic", "resync", "--waitlist", "vpn", "-y")
    assert result.output.endswith("Queued 1 contacts for sync.\n")
    assert (await _retries(empty_database))[str(vpn.email_id)] == 0

    unknown = await ctms("acoustic", "resync", "--waitlist", "relay", "-y")
    assert unknown.exit_code == 4
    assert "Unknown waitlist 'relay'" in unknown.output
    unknown = await ctms("acoustic", "resync", "--newsletter", "nope", "-y")
    assert "Unknown newsletter 'nope'" in unknown.output


async def test_resync_by_newsletter_and_waitlist_walks_them_in_pages_queuing_each_contact_once(
    ctms: Ctms, empty_database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    news, former, vpn = await _contacts_with_lists(empty_database)
    extra = [
        make_contact(newsletters=(make_newsletter("firefox-news"),), waitlists=(make_waitlist(),))
        for _ in range(2)
    ]
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:
        for contact in extra:
            await uow.contacts.add(contact)
        await uow.commit()
    monkeypatch.setattr(acoustic_resync, "SELECTION_PAGE", 2)

    result = await ctms(
        "acoustic", "resync", "--newsletter", "firefox-news", "--waitlist", "vpn", "-y"
    )

    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if line.startswith("Queued ")]
    assert progress == [
        "Queued 2 of 4 contacts…",
        "Queued 4 of 4 contacts…",
        "Queued 4 contacts for sync.",
    ]
    retries = await _retries(empty_database)
    assert {email_id for email_id, retry in retries.items() if retry == 0} == {
        str(c.email_id) for c in (news, vpn, *extra)
    }
    assert retries[str(former.email_id)] == 2


async def test_reset_retries_gives_every_queued_contact_its_retries_back(
    ctms: Ctms, empty_database: AsyncEngine
) -> None:
    contacts = await _contacts_with_lists(empty_database)

    result = await ctms("acoustic", "resync", "--reset-retries", "-y")

    assert result.exit_code == 0, result.output
    assert "Reset the retries of 3 contacts." in result.output
    assert await _retries(empty_database) == {str(c.email_id): 0 for c in contacts}
    async with PostgresUnitOfWorkFactory(empty_database)() as uow:  # due now, not in an hour
        claimed = await uow.sync_queue.claim(
            "acoustic",
            limit=10,
            now=datetime.now(UTC) + timedelta(seconds=1),
            lease_until=datetime.now(UTC) + timedelta(minutes=1),
        )
    assert len(claimed) == 3


async def test_dump_writes_each_contact_as_its_main_table_row(
    ctms: Ctms, empty_database: AsyncEngine, tmp_path: Path
) -> None:
    await seed_acoustic_configuration(PostgresUnitOfWorkFactory(empty_database))
    contacts = await _contacts_with_lists(empty_database)
    output = tmp_path / "dump.csv"

    result = await ctms("acoustic", "dump", "-o", str(output), "-y")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(output.read_text(encoding="utf-8").splitlines()))
    assert sorted(row["email_id"] for row in rows) == sorted(str(c.email_id) for c in contacts)
    expected = map_contact(contacts[0], (), default_configuration()).main
    dumped = next(row for row in rows if row["email_id"] == str(contacts[0].email_id))
    assert {name: dumped[name] for name in expected} == dict(expected)
    assert list(rows[0]) == sorted(rows[0])

    only_news = await ctms("acoustic", "dump", "--newsletter", "firefox-news", "-y")
    assert only_news.output.count("news@example.com") == 1
    assert "vpn@example.com" not in only_news.output


async def test_dump_of_nothing_fails_and_the_configuration_dumps_as_csv(ctms: Ctms) -> None:
    nothing = await ctms("acoustic", "dump", "-y")
    assert nothing.exit_code == 69
    assert "No contact found for query." in nothing.output

    await ctms("acoustic", "fields", "add", "fxa_lang")
    await ctms("acoustic", "newsletters", "add", "mozilla-rally:sub_rally")
    configuration = await ctms("acoustic", "dump", "--configuration")
    assert configuration.exit_code == 0
    assert configuration.output.splitlines() == [
        "kind,table_or_source,field_or_column",
        "field,main,fxa_lang",
        "newsletter_mapping,mozilla-rally,sub_rally",
    ]
