"""One sync queue, any number of destinations, retries that outlast an outage (issue #18, docs/acoustic.md,
docs/adr/0009-one-sync-queue.md): real worker loops on PostgreSQL against the fake Acoustic.

The second destination is a test destination named `braze` (`tests/support/recording_destination.py`), put
in the container's `braze_destination` provider: it exercises the destination-independent queue, worker,
heartbeat block and healthcheck without the Braze adapter. The real Braze destination, built by the
container from settings, runs against the fake Braze in `test_braze_worker.py`.

Time is compressed: backoffs of a tenth of a second stand for minutes, and the give-up time (the 24 h
default in production) for a time longer than the test runs. Timing only bounds the tests; what is
asserted does not depend on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_core.domain.contact import Contact
from ctms_entrypoints.worker.healthcheck_file import healthcheck_path_for
from ctms_entrypoints.worker.loop import SyncWorker
from tests.integration.reliability.test_acoustic_outage import (
    RETRY_LIMIT,
    Deployment,
    deployed,
)
from tests.support.acoustic_sync import LIST_ID, expect_uploaded
from tests.support.fake_acoustic import FakeAcoustic, running_fake_acoustic
from tests.support.recording_destination import RecordingDestination

pytestmark = pytest.mark.integration

# Far longer than any test here runs: only the time of continuous failure may give a contact up.
GIVE_UP_AFTER = timedelta(minutes=10)


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic() as server:
        yield server


async def erase(deployment: Deployment, contacts: list[Contact]) -> None:
    for contact in contacts:
        await deployment.contacts.delete(contact.email.primary_email)
        deployment.latest.pop(contact.email_id)


async def max_retry(deployment: Deployment) -> int:
    rows = await deployment.pending_rows()
    return max((retry for retry, _ in rows.values()), default=0)


async def test_a_flaky_acoustic_for_minutes_ends_with_everything_delivered_and_nothing_given_up(
    empty_database: AsyncEngine, database_url: str, fake: FakeAcoustic, tmp_path: Path
) -> None:
    """60 % of Acoustic's calls fail (every 2nd an HTTP 500, and every 5th of the others a FAILURES
    answer) while contacts are created, edited and erased, for long enough that contacts fail far more
    often than `CTMS_ACOUSTIC_RETRY_LIMIT`: none is given up (they have not failed for the give-up
    time), the erasures keep retrying, and once Acoustic is healthy again every contact is there as
    last written, every erased one is gone, and nothing is listed by `ctms acoustic failed`."""
    async with deployed(
        database_url,
        fake,
        tmp_path,
        workers=2,
        policy={"give_up_after": GIVE_UP_AFTER, "backoff_cap_s": 0.2},
    ) as deployment:
        synced = await deployment.create(6, "before")
        await deployment.wait_drained()

        fake.fail_every(2, "html500")
        fake.fail_every(5, "failures")
        created = await deployment.create(10, "flaky")
        await deployment.edit(synced[:3] + created[:4], "Edited")
        erased = synced[3:] + created[8:]
        await erase(deployment, erased)

        async def burned_the_retry_budget() -> bool:
            return await max_retry(deployment) > RETRY_LIMIT + 2 and fake.faults_served >= 100

        await deployment.wait_until(burned_the_retry_budget, "contacts failing past the limit")
        assert await deployment.failed() == []

        fake.clear_faults()
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()
        for contact in erased:
            assert fake.recipient(LIST_ID, str(contact.email_id)) is None
        assert {call.email for call in fake.calls_of("RemoveRecipient")} >= {
            contact.email.primary_email for contact in synced[3:]
        }
        assert await deployment.failed() == []


async def test_a_row_enqueued_by_a_ctms_api_release_is_delivered(
    empty_database: AsyncEngine, database_url: str, fake: FakeAcoustic, tmp_path: Path
) -> None:
    """v3.3's ctms-api, still running on an adopted database, enqueues by upserting an `email_id` row
    into `pending_acoustic`: the worker routes and delivers it like its own."""
    async with deployed(database_url, fake, tmp_path) as deployment:
        (contact,) = await deployment.create(1, "legacy")
        await deployment.wait_drained()
        stored = await deployment.contacts.get(contact.email_id)
        engine: AsyncEngine = deployment.app.container.engine()
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE emails SET first_name = 'Legacy' WHERE email_id = :id"),
                {"id": contact.email_id},
            )
            await connection.execute(
                text(
                    "INSERT INTO pending_acoustic (email_id) VALUES (:id) ON CONFLICT (email_id)"
                    " DO UPDATE SET retry = 0, update_timestamp = now()"
                ),
                {"id": contact.email_id},
            )
        edited = await deployment.contacts.get(contact.email_id)
        assert edited.email.first_name == "Legacy" != stored.email.first_name
        deployment.latest[contact.email_id] = edited
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()


@dataclasses.dataclass
class TwoDestinations:
    deployment: Deployment
    braze: RecordingDestination
    worker: SyncWorker

    async def backlog(self, name: str) -> int:
        response = await self.deployment.app.http.get("/__heartbeat__")
        block = response.json()["database"][name]
        assert block["success"] is True, block
        backlog: int = block["backlog"]
        return backlog

    async def wait_backlog(self, name: str, count: int) -> None:
        async def reached() -> bool:
            return await self.backlog(name) == count

        await self.deployment.wait_until(reached, f"{name} backlog {count}")

    def braze_holds(self, contacts: dict[object, Contact]) -> None:
        last: dict[object, Contact | None] = {}
        for delivery in self.braze.delivered:
            last[delivery.email_id] = delivery.contact
        for email_id, contact in contacts.items():
            assert last.get(email_id) == contact


async def start_two_destination_worker(deployment: Deployment) -> TwoDestinations:
    braze = RecordingDestination("braze")
    worker, _ = await deployment.start_worker(braze_destination=braze)
    assert [service.name for service in worker.services] == ["acoustic", "braze"]
    return TwoDestinations(deployment, braze, worker)


async def test_two_destinations_drain_independently_while_the_other_is_down(
    empty_database: AsyncEngine, database_url: str, fake: FakeAcoustic, tmp_path: Path
) -> None:
    """With `CTMS_SYNC_DESTINATIONS=acoustic,braze` each destination gets every contact and every
    erasure; while one is down the other drains and the heartbeat shows the waiting one's backlog;
    each loop touches its own healthcheck file."""
    async with deployed(
        database_url, fake, tmp_path, workers=0, settings={"sync_destinations": "acoustic,braze"}
    ) as deployment:
        both = await start_two_destination_worker(deployment)

        both.braze.down = True
        contacts = await deployment.create(6, "both")
        erased = contacts[4:]
        await erase(deployment, erased)
        await both.wait_backlog("acoustic", 0)
        await deployment.assert_acoustic_holds_the_latest_contacts()
        assert await both.backlog("braze") == len(contacts)
        assert both.braze.delivered == []

        both.braze.down = False
        await both.wait_backlog("braze", 0)
        both.braze_holds(dict(deployment.latest))
        assert both.braze.erased_ids() == {contact.email_id for contact in erased}

        fake.go_down("refused")
        later = await deployment.create(3, "acoustic-down")
        await deployment.edit(contacts[:1], "Again")
        await both.wait_backlog("braze", 0)
        both.braze_holds({c.email_id: deployment.latest[c.email_id] for c in later})
        assert await both.backlog("acoustic") == len(later) + 1
        fake.come_back()
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()
        for contact in erased:
            assert fake.recipient(LIST_ID, str(contact.email_id)) is None

        path = deployment.settings.background_healthcheck_path
        for name in ("acoustic", "braze"):
            healthcheck = healthcheck_path_for(path, name)
            assert healthcheck is not None and healthcheck.exists(), name
        assert healthcheck_path_for(path, "braze") != path
        expect_uploaded(fake, deployment.latest[contacts[0].email_id])
