"""The real Braze destination in the real worker (issue #18, docs/braze.md): `ctms sync`'s container built
from settings, `CTMS_SYNC_DESTINATIONS=braze` or `acoustic,braze`, its `BrazeDestination` speaking real HTTP
to the fake Braze, on PostgreSQL, beside the fake Acoustic.

The exact documents Braze receives are tested in tests/integration/test_braze_destination.py; here the
test looks at what Braze ends up holding: each contact's profile as last written through the API, and the
erased contacts deleted. Time is compressed as in `test_sync_destinations.py`; timing only bounds the
tests.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresBrazeSubscriptionGroupRepository
from ctms_core.domain.contact import Contact
from ctms_core.services.braze_destination import BrazeDestination
from ctms_entrypoints.container import (
    Container,
    dispose,
)
from ctms_entrypoints.worker.loop import SyncWorker
from tests.integration.reliability.test_acoustic_outage import (
    Deployment,
    deployed,
)
from tests.integration.reliability.test_sync_destinations import GIVE_UP_AFTER, erase
from tests.support.acoustic_sync import LIST_ID
from tests.support.fake_acoustic import FakeAcoustic, running_fake_acoustic
from tests.support.fake_braze import FakeBraze, running_fake_braze
from tests.support.log_capture import captured_logs

pytestmark = pytest.mark.integration

# The subscription groups of the newsletters the contacts of `Deployment.create`/`edit` subscribe to
# (`ctms braze newsletters add`).
GROUPS = {
    "firefox-news": "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21",
    "mozilla-and-you": "5d7f9b1c-3e5a-4c7e-9a1c-3e5a7c9e1b35",
}
# Below the 1 s the gateway waits at least after any 429: every 429 is beyond the wait.
RATE_LIMIT_WAIT_S = 0.5


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic() as server:
        yield server


@pytest.fixture
def braze() -> Iterator[FakeBraze]:
    with running_fake_braze() as server:
        yield server


@dataclasses.dataclass
class BrazeDeployment:
    """A `Deployment` whose workers are `ctms sync` containers built from settings, Braze included."""

    deployment: Deployment
    braze: FakeBraze
    containers: list[Container] = dataclasses.field(default_factory=list)

    async def start_worker(self) -> SyncWorker:
        """One more `ctms sync` process: nothing overridden but the storage shared with the API, the
        Acoustic HTTP client, the metrics, the compressed policy and the jitter."""
        deployment = self.deployment
        worker, container = await deployment.start_worker()
        self.containers.append(container)
        services = {service.name: service for service in worker.services}
        assert list(services) == list(deployment.settings.sync_destination_names)
        assert isinstance(services["braze"].destination, BrazeDestination)
        return worker

    async def backlog(self, name: str) -> int:
        """The destination's backlog, as `/__heartbeat__` shows it."""
        response = await self.deployment.app.http.get("/__heartbeat__")
        block = response.json()["database"][name]
        assert block["success"] is True, block
        backlog: int = block["backlog"]
        return backlog

    async def pending(self, name: str) -> dict[uuid.UUID, int]:
        """`email_id → retry` of the contacts routed to `name` and not yet delivered to it."""
        engine: AsyncEngine = self.deployment.app.container.engine()
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT email_id, retry FROM pending_sync WHERE destination = :name"),
                {"name": name},
            )
            return {row.email_id: row.retry for row in result}

    async def wait_braze_drained(self) -> None:
        async def drained() -> bool:
            return (
                await self.backlog("braze") == 0
                and not await self.pending("braze")
                and self.braze.in_flight == 0
            )

        await self.deployment.wait_until(drained, "the braze backlog drained")

    async def wait_braze_down(self, passes: int) -> None:
        """Until the braze loop of the first worker found Braze down in `passes` passes."""

        def outage_passes() -> int:
            metrics = self.deployment.workers[0][1]
            return sum(
                1
                for stats in metrics.passes
                if stats.destination == "braze" and stats.count_total and stats.outage_pause_s
            )

        async def enough() -> bool:
            return outage_passes() >= passes

        await self.deployment.wait_until(enough, f"{passes} passes finding Braze down")

    async def assert_braze_holds_the_latest_contacts(self) -> None:
        """Every contact not erased is in Braze as it is stored now; no braze contact is given up."""
        assert self.deployment.latest
        for email_id, written in self.deployment.latest.items():
            stored = await self.deployment.contacts.get(email_id)
            assert stored == written
            assert_profile(self.braze, stored)
        failed = await self.deployment.app.container.acoustic_admin_service().failed("braze")
        assert failed == []


def assert_profile(braze: FakeBraze, contact: Contact) -> None:
    """Braze's profile of `contact` holds its address, names and newsletter subscriptions."""
    profile = braze.profile(str(contact.email_id))
    assert profile is not None, contact.email_id
    email = contact.email
    assert (profile["email"], profile["first_name"], profile.get("last_name")) == (
        email.primary_email,
        email.first_name,
        email.last_name,
    )
    expected_groups = {
        GROUPS[newsletter.name]: "subscribed" if newsletter.subscribed else "unsubscribed"
        for newsletter in contact.newsletters
        if newsletter.name in GROUPS
    }
    assert profile.get("subscription_groups", {}) == expected_groups


@asynccontextmanager
async def braze_deployed(
    database_url: str,
    fake: FakeAcoustic,
    braze: FakeBraze,
    tmp_path: Path,
    destinations: str,
    **settings: Any,
) -> AsyncIterator[BrazeDeployment]:
    """`deployed` with `CTMS_SYNC_DESTINATIONS=destinations`, Braze configured for `braze` and the
    newsletters' subscription groups mapped; no worker started. The workers' containers are disposed
    once the workers stopped."""
    braze_settings = {
        "sync_destinations": destinations,
        "braze_url": braze.base_url,
        "braze_api_key": braze.api_key,
        "braze_max_rate_limit_wait_s": RATE_LIMIT_WAIT_S,
        **settings,
    }
    containers: list[Container] = []
    try:
        async with deployed(
            database_url,
            fake,
            tmp_path,
            workers=0,
            settings=braze_settings,
            policy={"give_up_after": GIVE_UP_AFTER},
        ) as deployment:
            groups = PostgresBrazeSubscriptionGroupRepository(deployment.app.container.engine())
            for name, group_id in GROUPS.items():
                await groups.add("newsletter", name, group_id)
            yield BrazeDeployment(deployment, braze, containers)
    finally:
        for container in containers:
            await dispose(container)


async def test_contacts_written_through_the_api_reach_braze(
    empty_database: AsyncEngine,
    database_url: str,
    fake: FakeAcoustic,
    braze: FakeBraze,
    tmp_path: Path,
) -> None:
    """`CTMS_SYNC_DESTINATIONS=braze`: contacts created, patched (a name changed, a newsletter left)
    and erased through the HTTP API end in Braze as last written, the erased ones deleted by their
    `external_id`; Acoustic is never called, and the key goes as a bearer token."""
    async with braze_deployed(
        database_url, fake, braze, tmp_path, "braze", braze_batch_limit=3
    ) as setup:
        deployment = setup.deployment
        app = deployment.app
        token = await app.token(await app.create_client("braze-test"))
        headers = {"Authorization": f"Bearer {token}"}
        await setup.start_worker()

        async def create(index: int) -> Contact:
            body = {
                "email": {
                    "primary_email": f"api-{index}-{uuid.uuid4().hex[:8]}@example.com",
                    "first_name": f"Api {index}",
                    "last_name": "Braze",
                },
                "newsletters": [{"name": "firefox-news"}],
            }
            response = await app.http.post("/ctms", json=body, headers=headers)
            assert response.status_code == 201, response.text
            return await reread(uuid.UUID(response.json()["email"]["email_id"]))

        async def reread(email_id: uuid.UUID) -> Contact:
            contact = await deployment.contacts.get(email_id)
            deployment.latest[email_id] = contact
            return contact

        contacts = [await create(index) for index in range(7)]
        await setup.wait_braze_drained()
        await setup.assert_braze_holds_the_latest_contacts()

        for contact in contacts[:3]:
            response = await app.http.patch(
                f"/ctms/{contact.email_id}",
                json={
                    "email": {"first_name": "Patched"},
                    "newsletters": [
                        {"name": "firefox-news", "subscribed": False},
                        {"name": "mozilla-and-you", "subscribed": True},
                    ],
                },
                headers=headers,
            )
            assert response.status_code == 200, response.text
            await reread(contact.email_id)
        erased = contacts[5:]
        for contact in erased:
            response = await app.http.delete(
                f"/ctms/{contact.email.primary_email}", headers=headers
            )
            assert response.status_code == 200, response.text
            deployment.latest.pop(contact.email_id)
        contacts.append(await create(99))

        await setup.wait_braze_drained()
        await setup.assert_braze_holds_the_latest_contacts()
        assert deployment.latest[contacts[0].email_id].email.first_name == "Patched"
        assert set(braze.deleted_ids()) == {str(contact.email_id) for contact in erased}
        for contact in erased:
            assert braze.profile(str(contact.email_id)) is None
        assert braze.max_in_flight >= 1
        assert set(braze.authorizations) == {f"Bearer {braze.api_key}"}
        # CTMS_BRAZE_BATCH_LIMIT, not CTMS_ACOUSTIC_BATCH_LIMIT (20): 3 contacts per pass, and so
        # requests of at most 3 users; the heartbeat's braze block says so.
        passes = deployment.workers[0][1].passes
        assert {stats.batch_limit for stats in passes} == {3}
        assert max(len(request) for request in braze.track_requests) <= 3
        heartbeat = (await app.http.get("/__heartbeat__")).json()["database"]
        assert (heartbeat["braze"]["batch_limit"], heartbeat["acoustic"]["batch_limit"]) == (3, 20)
        assert fake.calls_of("AddRecipient") == []
        assert await setup.pending("acoustic") == {}


@pytest.mark.parametrize("outage", ["5xx", "429"])
async def test_both_destinations_drain_independently_while_braze_is_down(
    empty_database: AsyncEngine,
    database_url: str,
    fake: FakeAcoustic,
    braze: FakeBraze,
    tmp_path: Path,
    outage: str,
) -> None:
    """`CTMS_SYNC_DESTINATIONS=acoustic,braze`, two workers: while Braze answers every request with a
    503 (or a 429 whose reset is beyond `CTMS_BRAZE_MAX_RATE_LIMIT_WAIT_S`) for many passes, Acoustic
    gets every contact and erasure, the braze backlog holds every contact written meanwhile, none uses
    a retry or is given up; once Braze is back its backlog drains and it holds every contact as last
    written, the erased ones deleted. Then Acoustic is down while Braze goes on."""
    async with braze_deployed(database_url, fake, braze, tmp_path, "acoustic,braze") as setup:
        deployment = setup.deployment
        await setup.start_worker()
        await setup.start_worker()
        before = await deployment.create(4, "before")
        await deployment.wait_drained()
        await setup.wait_braze_drained()
        await setup.assert_braze_holds_the_latest_contacts()

        if outage == "5xx":
            braze.fail_next("5xx", times=10_000)
        else:
            braze.fail_next("429", times=10_000, reset_in_s=60)
        during = await deployment.create(5, "during")
        await deployment.edit(before[:2] + during[:2], "Outage")
        erased = before[3:] + during[4:]
        await erase(deployment, erased)
        await setup.wait_braze_down(passes=6)

        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()
        for contact in erased:
            assert fake.recipient(LIST_ID, str(contact.email_id)) is None
        waiting = {c.email_id for c in during} | {c.email_id for c in before[:2] + before[3:]}
        pending = await setup.pending("braze")
        assert set(pending) == waiting
        assert set(pending.values()) == {0}, "an outage used contacts' retries"
        assert await setup.backlog("braze") == len(waiting)
        assert braze.faults_served >= 6
        deployment.assert_workers_running()

        braze.clear_faults()
        await setup.wait_braze_drained()
        await setup.assert_braze_holds_the_latest_contacts()
        assert {str(contact.email_id) for contact in erased} <= set(braze.deleted_ids())
        for contact in erased:
            assert braze.profile(str(contact.email_id)) is None

        fake.go_down("refused")
        later = await deployment.create(2, "acoustic-down")
        await deployment.edit(during[:1], "Again")
        await setup.wait_braze_drained()
        await setup.assert_braze_holds_the_latest_contacts()
        assert await setup.backlog("acoustic") == len(later) + 1
        fake.come_back()
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()


async def test_a_refused_key_is_an_outage_and_never_written_anywhere(
    empty_database: AsyncEngine,
    database_url: str,
    fake: FakeAcoustic,
    braze: FakeBraze,
    tmp_path: Path,
) -> None:
    """A key Braze refuses (401, whose message echoes the key) holds the braze backlog without spending
    the contacts' retries; the key appears in no log line, stored error or heartbeat. Once Braze
    accepts the key (as when the operator fixes its permissions) the backlog drains."""
    wrong_key = "revoked-braze-key-4242"
    with captured_logs() as logs:
        async with braze_deployed(
            database_url, fake, braze, tmp_path, "braze", braze_api_key=wrong_key
        ) as setup:
            deployment = setup.deployment
            await setup.start_worker()
            await deployment.create(3, "refused")
            await setup.wait_braze_down(passes=4)

            pending = await setup.pending("braze")
            assert len(pending) == 3 and set(pending.values()) == {0}
            engine: AsyncEngine = deployment.app.container.engine()
            async with engine.connect() as connection:
                errors = (
                    await connection.execute(
                        text("SELECT last_error FROM pending_sync WHERE destination = 'braze'")
                    )
                ).scalars()
                assert all("HTTP 401" in error and wrong_key not in error for error in errors)
            heartbeat = (await deployment.app.http.get("/__heartbeat__")).text
            assert wrong_key not in heartbeat
            assert set(braze.authorizations) == {f"Bearer {wrong_key}"}

            braze.api_key = wrong_key
            await setup.wait_braze_drained()
            await setup.assert_braze_holds_the_latest_contacts()
    lines = logs.lines()
    assert any("braze" in line for line in lines)
    assert not [line for line in lines if wrong_key in line]
