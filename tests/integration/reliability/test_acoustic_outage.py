"""Acoustic down, slow or faulty for a while: the sync backlog grows, nothing is lost, and it drains once
Acoustic recovers (docs/contract.md §16.3, issue #9).

Contacts are written through the real use cases (`ContactService`) on PostgreSQL while the worker of
`ctms sync` (the container's `sync_worker`: its gateway, policy and loop) runs against the fake Acoustic server. The
tests look where an operator would: `/__heartbeat__`'s backlog, the worker's metrics, the
pending rows (`pending_acoustic`, the inlet, and the acoustic destination's `pending_sync`) and the list of
`ctms acoustic failed`. Outages are longer, in attempts, than a
contact's retry budget (`CTMS_ACOUSTIC_RETRY_LIMIT`), so a contact that paid for them would end failed.

Timing only bounds the tests (short backoff, client timeout and loop delay; "drained" is polled against a
deadline); what is asserted does not depend on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_core.domain.contact import Contact
from ctms_core.domain.inputs import ContactPatch, parse_contact_input
from ctms_core.domain.sync import PendingSync, SyncPassStats
from ctms_core.services.contacts import ContactService
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.container import (
    Container,
    build_container,
    release_request_slots,
    sync_policy_from_settings,
)
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.loop import SyncWorker
from ctms_entrypoints.worker.metrics import CONSTANT_LABELS, BackgroundMetrics
from tests.support.acoustic_sync import (
    LIST_ID,
    NEWSLETTERS,
    PRODUCTS,
    WAITLISTS,
    expect_uploaded,
    seed_acoustic_configuration,
)
from tests.support.fake_acoustic import FakeAcoustic, FaultKind, OutageKind, running_fake_acoustic
from tests.support.postgres_app import PostgresApp, postgres_app

pytestmark = pytest.mark.integration

RETRY_LIMIT = 2
TIMEOUT_S = 0.2
DEADLINE_S = 30.0  # a bound against hanging, far above what any phase needs


class RecordingMetrics(BackgroundMetrics):
    """The worker's metrics, keeping the statistics of every pass."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[SyncPassStats] = []

    def record_pass(self, stats: SyncPassStats, duration_s: float) -> None:
        self.passes.append(stats)
        super().record_pass(stats, duration_s)

    def value(self, name: str) -> float | None:
        return self.registry.get_sample_value(name, CONSTANT_LABELS)

    def outage_passes(self, since: int = 0) -> int:
        """Passes that attempted contacts and found Acoustic down."""
        return sum(
            1
            for stats in self.passes[since:]
            if stats.count_total and stats.outage_pause_s is not None
        )


@dataclasses.dataclass
class Deployment:
    """The API's container on PostgreSQL, the fake Acoustic, and sync workers running in this loop."""

    app: PostgresApp
    fake: FakeAcoustic
    http: httpx.AsyncClient
    settings: Settings
    policy_overrides: dict[str, Any]
    stop: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    workers: list[tuple[SyncWorker, RecordingMetrics, asyncio.Task[None]]] = dataclasses.field(
        default_factory=list
    )
    worker_containers: list[Container] = dataclasses.field(default_factory=list)
    latest: dict[uuid.UUID, Contact] = dataclasses.field(default_factory=dict)

    @property
    def contacts(self) -> ContactService:
        service: ContactService = self.app.container.contact_service()
        return service

    @property
    def metrics(self) -> RecordingMetrics:
        return self.workers[0][1]

    async def start_worker(self, **overrides: Any) -> tuple[SyncWorker, Container]:
        """One more `ctms sync` process: a container of its own, on the app's database; `overrides`
        replace more providers (e.g. a destination)."""
        metrics = RecordingMetrics()
        policy = dataclasses.replace(
            sync_policy_from_settings(self.settings), **self.policy_overrides
        )
        container = build_container(
            self.settings,
            # The app's engine: the worker's request slots live in this database too.
            engine=self.app.container.engine(),
            uow_factory=self.app.container.uow_factory(),
            clock=self.app.container.clock(),
            acoustic_http_client=self.http,
            worker_metrics=metrics,
            sync_policy=policy,
            jitter=lambda low, high: high,  # no jitter: pauses are exactly the backoff steps
            **overrides,
        )
        worker: SyncWorker = await resolved(container.sync_worker)
        self.workers.append((worker, metrics, asyncio.create_task(worker.run(self.stop))))
        self.worker_containers.append(container)
        return worker, container

    def assert_workers_running(self) -> None:
        for _, _, task in self.workers:
            assert not task.done(), task.exception() if not task.cancelled() else "cancelled"

    async def create(self, count: int, label: str) -> list[Contact]:
        created = []
        for index in range(count):
            body = {
                "email": {
                    "primary_email": f"{label}-{index}-{uuid.uuid4().hex[:8]}@example.com",
                    "first_name": f"{label} {index}",
                },
                "newsletters": [{"name": "firefox-news"}],
                "waitlists": [{"name": "vpn", "fields": {"geo": "fr"}}],
            }
            result = await self.contacts.create(parse_contact_input(body, require_email_id=False))
            self.latest[result.contact.email_id] = result.contact
            created.append(result.contact)
        return created

    async def edit(self, contacts: list[Contact], first_name: str) -> None:
        for contact in contacts:
            result = await self.contacts.patch(
                contact.email_id,
                ContactPatch(
                    email={"first_name": first_name},
                    newsletters=({"name": "mozilla-and-you", "subscribed": True},),
                ),
            )
            self.latest[contact.email_id] = result.contact

    async def heartbeat(self) -> dict[str, Any]:
        """The Acoustic part of `/__heartbeat__`."""
        response = await self.app.http.get("/__heartbeat__")
        acoustic: dict[str, Any] = response.json()["database"]["acoustic"]
        return acoustic

    async def pending_rows(self) -> dict[uuid.UUID, tuple[int, str]]:
        """`email_id → (retry, last_error)` of every contact pending for Acoustic: the inlet's rows
        (`pending_acoustic`, not yet routed) and the acoustic destination's (`pending_sync`)."""
        engine: AsyncEngine = self.app.container.engine()
        async with engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT email_id, retry, last_error FROM pending_sync"
                    " WHERE destination = 'acoustic'"
                    " UNION ALL SELECT email_id, 0, '' FROM pending_acoustic"
                )
            )
            return {row.email_id: (row.retry, row.last_error) for row in result}

    async def failed(self) -> list[PendingSync]:
        """What `ctms acoustic failed` lists."""
        failed: list[PendingSync] = await self.app.container.acoustic_admin_service().failed()
        return failed

    async def wait_until(self, condition: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll `condition` until true; fail after `DEADLINE_S` (with a snapshot of the deployment)
        or if a worker stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while not await condition():
            self.assert_workers_running()
            if loop.time() >= deadline:
                pytest.fail(f"not within {DEADLINE_S} s: {what}\n{await self.snapshot()}")
            await asyncio.sleep(0.05)
        self.assert_workers_running()

    async def snapshot(self) -> str:
        """What an operator would look at, for a failure message."""
        engine: AsyncEngine = self.app.container.engine()
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT email_id, version, retry, last_error, next_attempt_at, claimed_until"
                        " FROM pending_sync WHERE destination = 'acoustic'"
                        " ORDER BY update_timestamp"
                    )
                )
            ).all()
        lines = [
            f"heartbeat: {await self.heartbeat()}",
            f"fake: in_flight={self.fake.in_flight} faults_served={self.fake.faults_served}",
            *(f"pending: {tuple(row)}" for row in rows),
        ]
        for index, (worker, metrics, task) in enumerate(self.workers):
            lines.append(
                f"worker {index}: done={task.done()} passes={len(metrics.passes)} "
                f"outage={worker.service.outage}"
            )
            lines.extend(f"  {stats.log_context()}" for stats in metrics.passes[-3:])
        return "\n".join(lines)

    async def wait_for_outage_passes(self, count: int) -> None:
        """Wait until the first worker has found Acoustic down in `count` more passes."""
        since = len(self.metrics.passes)

        async def enough() -> bool:
            return self.metrics.outage_passes(since) >= count

        await self.wait_until(enough, f"{count} passes finding Acoustic down")

    async def wait_drained(self) -> None:
        """The queue is empty, every worker's backlog gauge says so, and no request is in flight."""

        async def drained() -> bool:
            heartbeat = await self.heartbeat()
            return (
                (heartbeat["backlog"], heartbeat["retry_backlog"]) == (0, 0)
                and not await self.pending_rows()
                and all(
                    metrics.value("ctms_background_acoustic_sync_backlog") == 0
                    for _, metrics, _ in self.workers
                )
                and self.fake.in_flight == 0
            )

        await self.wait_until(drained, "the sync backlog drained")

    async def assert_acoustic_holds_the_latest_contacts(self) -> None:
        """Every contact ever written is in Acoustic as it is stored now, and none is failed."""
        assert self.latest
        for email_id, written in self.latest.items():
            stored = await self.contacts.get(email_id)
            assert stored == written
            expect_uploaded(self.fake, stored)
        assert await self.failed() == []


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic() as server:
        yield server


@asynccontextmanager
async def deployed(
    database_url: str,
    fake: FakeAcoustic,
    tmp_path: Path,
    *,
    workers: int = 1,
    settings: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
) -> AsyncIterator[Deployment]:
    """The API container and `workers` sync workers on the emptied test database, pointed at `fake`;
    on exit the workers are stopped (SIGTERM's path) and must end cleanly."""
    overrides: dict[str, Any] = {
        "acoustic_sync_feature_flag": True,
        "acoustic_integration_feature_flag": True,
        "acoustic_base_url": fake.base_url,
        "acoustic_client_id": fake.client_id,
        "acoustic_client_secret": fake.client_secret,
        "acoustic_refresh_token": fake.refresh_token,
        "acoustic_main_table_id": int(LIST_ID),
        "acoustic_newsletter_table_id": int(NEWSLETTERS),
        "acoustic_waitlist_table_id": int(WAITLISTS),
        "acoustic_product_subscriptions_id": int(PRODUCTS),
        "acoustic_retry_limit": RETRY_LIMIT,
        "acoustic_batch_limit": 20,
        "acoustic_concurrency": 5,
        "acoustic_timeout_s": TIMEOUT_S,
        "acoustic_loop_min_secs": 0.05,
        "background_healthcheck_path": tmp_path / "sync-healthcheck",
        **(settings or {}),
    }
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(postgres_app(database_url, **overrides))
        http = await stack.enter_async_context(
            httpx.AsyncClient(limits=httpx.Limits(max_connections=20))
        )
        await seed_acoustic_configuration(app.container.uow_factory())
        deployment = Deployment(
            app=app,
            fake=fake,
            http=http,
            settings=app.container.settings(),
            policy_overrides={
                "lease": timedelta(seconds=5),  # far above a pass here (< 1 s)
                "backoff_base_s": 0.1,
                "backoff_cap_s": 0.4,
                "outage_pause_cap_s": 0.4,
                **(policy or {}),
            },
        )
        for _ in range(workers):
            await deployment.start_worker()
        try:
            yield deployment
        finally:
            deployment.stop.set()
            tasks = [task for _, _, task in deployment.workers]
            done, running = await asyncio.wait(tasks, timeout=DEADLINE_S)
            for task in running:
                task.cancel()
            assert not running, "a worker did not stop"
            for task in done:
                assert task.exception() is None, task.exception()
            for container in deployment.worker_containers:  # as `ctms sync` does on its way out
                await release_request_slots(container)


@pytest.mark.parametrize("outage", ["refused", "5xx"])
async def test_acoustic_down_for_a_while_loses_nothing_and_the_backlog_drains_after(
    empty_database: AsyncEngine,
    database_url: str,
    fake: FakeAcoustic,
    tmp_path: Path,
    outage: OutageKind,
) -> None:
    """Acoustic refuses connections (or answers 503 to everything, the OAuth grant included) for more
    attempts than a contact's retry budget: the backlog grows in the heartbeat, the metrics and the
    queue, no contact uses a retry or ends failed, the worker keeps running; once Acoustic is back the
    backlog drains and Acoustic holds every contact as last written, edits made during the outage
    included."""
    async with deployed(database_url, fake, tmp_path) as deployment:
        synced_before = await deployment.create(4, "before")
        await deployment.wait_drained()
        assert (await deployment.heartbeat())["backlog"] == 0

        fake.go_down(outage)
        written_during = await deployment.create(5, "during")
        await deployment.edit(synced_before[:2] + written_during[:2], "Outage")
        waiting = {c.email_id for c in written_during} | {c.email_id for c in synced_before[:2]}
        await deployment.wait_for_outage_passes(RETRY_LIMIT + 2)

        heartbeat = await deployment.heartbeat()
        assert (heartbeat["backlog"], heartbeat["retry_backlog"]) == (len(waiting), len(waiting))
        metrics = deployment.metrics
        assert metrics.value("ctms_background_acoustic_sync_backlog") == len(waiting)
        assert metrics.value("ctms_background_acoustic_sync_retries") == len(waiting)
        rows = await deployment.pending_rows()
        assert set(rows) == waiting
        assert {retry for retry, _ in rows.values()} == {0}, "an outage used contacts' retries"
        assert all("AcousticUnavailable" in error for _, error in rows.values()), rows
        assert await deployment.failed() == []
        deployment.assert_workers_running()

        fake.come_back()
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()
        assert metrics.value("ctms_background_acoustic_sync_total") == len(synced_before) + len(
            waiting
        )


async def test_acoustic_slower_than_the_client_timeout_loses_nothing_and_drains_after(
    empty_database: AsyncEngine, database_url: str, fake: FakeAcoustic, tmp_path: Path
) -> None:
    """Every Acoustic answer takes longer than `CTMS_ACOUSTIC_TIMEOUT_S` for a while, then answers are
    quick again: same outcome as an outage. A request the worker gave up on may still be applied by
    Acoustic later; the pause after a timeout (0.8 s) outlasts that delay (0.5 s), so it lands before
    the retry carrying newer data and cannot overwrite it."""
    async with deployed(
        database_url,
        fake,
        tmp_path,
        policy={"backoff_base_s": 0.8, "backoff_cap_s": 0.8, "outage_pause_cap_s": 0.8},
    ) as deployment:
        synced_before = await deployment.create(3, "before")
        await deployment.wait_drained()

        fake.latency_s = TIMEOUT_S + 0.3
        written_during = await deployment.create(4, "slow")
        await deployment.edit(synced_before[:2] + written_during[:1], "Slow")
        waiting = {c.email_id for c in written_during} | {c.email_id for c in synced_before[:2]}
        await deployment.wait_for_outage_passes(RETRY_LIMIT + 1)

        heartbeat = await deployment.heartbeat()
        assert heartbeat["backlog"] == len(waiting)
        rows = await deployment.pending_rows()
        assert set(rows) == waiting
        assert {retry for retry, _ in rows.values()} == {0}
        assert await deployment.failed() == []

        fake.latency_s = 0.0
        await deployment.wait_drained()
        await deployment.assert_acoustic_holds_the_latest_contacts()


@pytest.mark.parametrize("fault", ["html500", "failures", "html200"])
async def test_acoustic_failing_every_third_call_for_a_while_loses_nothing(
    empty_database: AsyncEngine,
    database_url: str,
    fake: FakeAcoustic,
    tmp_path: Path,
    fault: FaultKind,
) -> None:
    """Every third Acoustic call fails (HTTP 500, a FAILURES answer, or an HTML page with HTTP 200)
    until 8 calls have failed, while two workers share the queue and contacts are created and edited:
    every contact arrives as last written, none ends failed (the fault period is shorter than a
    contact's retry budget, so none can), and no contact is ever sent by two requests at once."""
    faults = 8
    async with deployed(
        database_url, fake, tmp_path, workers=2, settings={"acoustic_retry_limit": faults + 1}
    ) as deployment:
        fake.fail_every(3, fault, times=faults)
        first = await deployment.create(8, "faulty")
        await deployment.edit(first[:4], "Edited")
        second = await deployment.create(4, "later")
        await deployment.edit(first[4:6] + second[:2], "Again")

        await deployment.wait_drained()
        assert fake.faults_served == faults
        await deployment.assert_acoustic_holds_the_latest_contacts()
        assert set(fake.max_in_flight_per_recipient.values()) == {1}
        retried = sum(
            stats.counts.get("retry", 0)
            for _, metrics, _ in deployment.workers
            for stats in metrics.passes
        )
        assert retried >= 1
