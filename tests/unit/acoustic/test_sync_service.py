"""SyncService with the in-memory storage and the recording gateway; the sync policy (docs/contract.md §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork, ManualClock
from ctms_adapters.memory.acoustic import RecordingAcousticGateway
from ctms_core.domain.acoustic import AcousticConfiguration, default_configuration, map_contact
from ctms_core.domain.contact import Contact
from ctms_core.domain.sync import (
    AcousticOutage,
    QueueCounts,
    after_pass,
    next_attempt_at,
    primary_email_domain,
    retry_delay,
    uses_a_retry,
)
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticCall,
    AcousticError,
    AcousticFault,
    AcousticUnavailable,
)
from ctms_core.services.acoustic_destination import AcousticDestination, failure_kind
from ctms_core.services.sync import SyncPolicy, SyncService
from tests.builders import make_contact, make_newsletter

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)


class Observer:
    def __init__(self) -> None:
        self.calls: list[AcousticCall] = []
        self.states: list[str] = []

    def acoustic_call(self, call: AcousticCall) -> None:
        self.calls.append(call)

    def contact_done(self, destination: str, state: str) -> None:
        self.states.append(state)

    def erasure_addresses_dropped(self, count: int) -> None:
        pass


async def _default_configuration() -> AcousticConfiguration:
    return default_configuration()


class World:
    def __init__(self, concurrency: int = 5, **policy: object) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock(NOW)
        self.gateway = RecordingAcousticGateway()
        self.observer = Observer()
        destination = AcousticDestination(
            self.gateway,
            _default_configuration,
            concurrency=concurrency,
            on_call=self.observer.acoustic_call,
        )
        self.service = SyncService(
            self.uow,
            destination,
            self.clock,
            SyncPolicy(**{"backoff_base_s": 10.0, **policy}),  # type: ignore[arg-type]
            observer=self.observer,
            uniform=lambda low, high: high,
        )

    def uow(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)

    async def add(self, contact: Contact) -> Contact:
        async with self.uow() as uow:
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, self.clock.now())
            await uow.commit()
        return contact

    async def counts(self) -> QueueCounts:
        return await self.service.counts()


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    highest = lambda low, high: high  # noqa: E731
    lowest = lambda low, high: low  # noqa: E731
    assert retry_delay(1, base=5, uniform=highest) == timedelta(seconds=5)
    assert retry_delay(3, base=5, uniform=highest) == timedelta(seconds=20)
    assert retry_delay(3, base=5, uniform=lowest) == timedelta(seconds=10)
    assert retry_delay(30, base=5, cap=60, uniform=highest) == timedelta(seconds=60)
    assert next_attempt_at(1, NOW, base=5, uniform=highest) == NOW + timedelta(seconds=5)


def test_primary_email_domain_is_unknown_without_an_address() -> None:
    assert primary_email_domain("a@example.com") == "example.com"
    assert primary_email_domain(None) == "unknown"


async def test_a_pass_uploads_the_mapped_contact_and_empties_the_queue() -> None:
    world = World()
    contact = await world.add(make_contact(newsletters=(make_newsletter("firefox-news"),)))
    stats = await world.service.run_pass()
    record = map_contact(contact, [], default_configuration())
    assert world.gateway.recipients == {str(contact.email_id): dict(record.main)}
    assert world.gateway.rows == {"newsletter": [dict(row) for row in record.newsletters]}
    assert (stats.count_total, stats.counts) == (1, {"synced": 1})
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)
    assert [c.table for c in world.observer.calls] == ["main", "newsletter"]
    assert world.observer.states == ["synced"]


async def test_an_acoustic_error_is_retried_with_backoff_and_never_raised() -> None:
    world = World()
    await world.add(make_contact())
    world.gateway.fail_next(AcousticFault("Email Address Is Invalid", table="main"))
    stats = await world.service.run_pass()
    assert stats.counts == {"retry": 1}
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=1)
    assert (await world.service.run_pass()).count_total == 0  # backing off
    world.clock.advance(timedelta(seconds=10))
    assert (await world.service.run_pass()).counts == {"synced": 1}


@pytest.mark.parametrize(
    "error", [AcousticUnavailable("timeout"), RuntimeError("unexpected"), ValueError("bad xml")]
)
async def test_any_per_contact_exception_becomes_a_retry(error: Exception) -> None:
    world = World()
    await world.add(make_contact())
    world.gateway.fail_next(error)
    assert (await world.service.run_pass()).counts == {"retry": 1}


async def test_the_retry_limit_stops_attempts() -> None:
    world = World(retry_limit=2, give_up_after=timedelta(0))
    await world.add(make_contact())
    world.gateway.fail_next(times=5)
    for _ in range(4):
        await world.service.run_pass()
        world.clock.advance(timedelta(hours=2))
    assert world.gateway.recipients == {}
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=1)


async def test_an_edit_during_the_upload_is_synced_again() -> None:
    world = World()
    contact = await world.add(make_contact(first_name="Before"))

    async def edit() -> None:
        world.gateway.on_call = None
        async with world.uow() as uow:
            await uow.sync_queue.enqueue(contact.email_id, world.clock.now())
            await uow.commit()

    world.gateway.on_call = edit
    assert (await world.service.run_pass()).counts == {"synced": 1}
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=0)
    await world.service.run_pass()
    assert [method for method, _, _ in world.gateway.requests].count("add_recipient") == 2
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_uploads_are_bounded_by_the_concurrency() -> None:
    world = World(concurrency=3, batch_limit=10)
    world.gateway.delay = 0.01
    for _ in range(10):
        await world.add(make_contact())
    assert (await world.service.run_pass()).counts == {"synced": 10}
    assert world.gateway.max_in_flight == 3


async def test_integration_off_consumes_rows_without_calling_acoustic() -> None:
    world = World(integration_enabled=False)
    await world.add(make_contact())
    assert (await world.service.run_pass()).counts == {"skipped": 1}
    assert world.gateway.requests == []
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_sync_off_does_nothing() -> None:
    world = World(sync_enabled=False)
    await world.add(make_contact())
    assert (await world.service.run_pass()).count_total == 0
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=0)


async def test_an_erasure_is_sent_to_acoustic() -> None:
    from ctms_core.domain.acoustic import deletion_of

    world = World()
    contact = make_contact(newsletters=(make_newsletter("a"),))
    async with world.uow() as uow:
        await uow.sync_queue.enqueue_erasure(deletion_of(contact), NOW)
        await uow.commit()
    assert (await world.service.run_pass()).counts == {"erased": 1}
    assert world.gateway.removed == [str(contact.email_id)]
    assert world.gateway.requests[0] == ("delete_relational_table_data", "newsletter", 1)


async def test_the_pass_statistics_are_the_cycle_log_context() -> None:
    world = World(batch_limit=5)
    await world.add(make_contact())
    stats = await world.service.run_pass()
    context = stats.log_context()
    assert context["batch_limit"] == 5
    assert context["sync_backlog"] == 1
    assert context["count_synced"] == 1
    assert stats.age_s == 0.0


# --- Acoustic down: outages cost no retries (docs/contract.md §16.3) -----------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AcousticUnavailable("connection refused"), "outage"),
        (AcousticAuthError("OAuth refresh failed"), "outage"),
        (AcousticFault("Email Address Is Invalid"), "rejected"),
        (AcousticError("scripted failure"), "rejected"),
        (RuntimeError("a bug"), "error"),
    ],
)
def test_failures_are_classified_by_what_acoustic_answered(error: Exception, kind: str) -> None:
    assert failure_kind(error) == kind


def test_only_an_outage_failure_without_any_answer_in_the_pass_spares_the_retry() -> None:
    assert uses_a_retry("rejected", acoustic_answered=False)
    assert uses_a_retry("error", acoustic_answered=False)
    assert uses_a_retry("outage", acoustic_answered=True)
    assert not uses_a_retry("outage", acoustic_answered=False)


def test_the_outage_pause_grows_exponentially_is_capped_and_an_answer_ends_it() -> None:
    highest = lambda low, high: high  # noqa: E731
    outage = AcousticOutage()
    pauses = []
    for _ in range(5):
        outage = after_pass(
            outage,
            acoustic_answered=False,
            outage_failures=3,
            now=NOW,
            base=5,
            cap=30,
            uniform=highest,
        )
        assert outage.resume_at is not None
        pauses.append((outage.resume_at - NOW).total_seconds())
    assert pauses == [5, 10, 20, 30, 30]
    assert outage.paused(NOW + timedelta(seconds=29))
    assert not outage.paused(NOW + timedelta(seconds=30))
    unchanged = after_pass(outage, acoustic_answered=False, outage_failures=0, now=NOW)
    assert unchanged == outage
    assert (
        after_pass(outage, acoustic_answered=True, outage_failures=3, now=NOW) == AcousticOutage()
    )
    assert not AcousticOutage().paused(NOW)


async def test_a_long_outage_costs_no_retry_pauses_the_worker_and_drains_after() -> None:
    """Acoustic unreachable for far more attempts than the retry limit: every contact keeps retry 0
    (none is failed), the backlog and the retry backlog show it, the worker claims nothing while
    paused, and the first answer after the outage resumes the sync of everything."""
    world = World(retry_limit=2, batch_limit=10)
    for _ in range(3):
        await world.add(make_contact())
        world.clock.advance(timedelta(seconds=1))
    probes = 0
    for _ in range(40):
        if not world.service.outage.paused(world.clock.now()):
            # One refused connection per contact: each upload stops at its first request.
            world.gateway.fail_next(AcousticUnavailable("connection refused"), times=3)
        stats = await world.service.run_pass()
        assert stats.outage_pause_s is not None
        if stats.count_total:
            probes += 1
            assert stats.counts == {"retry": 3}
        else:
            assert world.service.outage.paused(world.clock.now())
        world.clock.advance(timedelta(seconds=30))
    assert probes > world.service.policy.retry_limit
    assert await world.counts() == QueueCounts(backlog=3, retry_backlog=3)
    async with world.uow() as uow:
        assert await uow.sync_queue.failed("acoustic") == []
    assert world.service.outage.passes == probes

    assert world.service.outage.resume_at is not None
    world.clock.set(world.service.outage.resume_at)
    stats = await world.service.run_pass()
    assert (stats.counts, stats.outage_pause_s) == ({"synced": 3}, None)
    assert world.service.outage == AcousticOutage()
    assert await world.counts() == QueueCounts(backlog=0, retry_backlog=0)


async def test_an_outage_failure_while_other_contacts_get_through_uses_a_retry() -> None:
    """Acoustic is up (another contact was synced in the same pass): a timeout or 5xx on this contact
    is its own trouble and counts against its budget, so a contact that always fails ends failed."""
    world = World(retry_limit=1, give_up_after=timedelta(0))
    unlucky = await world.add(make_contact())
    world.clock.advance(timedelta(seconds=1))
    await world.add(make_contact())
    world.gateway.fail_next(AcousticUnavailable("HTTP 500"))
    stats = await world.service.run_pass()
    assert stats.counts == {"retry": 1, "synced": 1}
    assert stats.outage_pause_s is None
    assert world.service.outage == AcousticOutage()
    async with world.uow() as uow:
        failed = await uow.sync_queue.failed("acoustic")
        assert [item.email_id for item in failed] == [unlucky.email_id]


async def test_a_rejection_uses_a_retry_even_when_nothing_else_got_through() -> None:
    """A Fault is an answer: Acoustic is up and refuses this contact; no outage, no pause."""
    world = World(retry_limit=3)
    await world.add(make_contact())
    world.gateway.fail_next(AcousticFault("Email Address Is Invalid"))
    stats = await world.service.run_pass()
    assert (stats.counts, stats.outage_pause_s) == ({"retry": 1}, None)
    async with world.uow() as uow:
        (item,) = await uow.sync_queue.claim(
            "acoustic",
            limit=5,
            now=NOW + timedelta(hours=1),
            lease_until=NOW + timedelta(hours=2),
        )
    assert item.retry == 1


async def test_an_edit_during_an_outage_resets_the_row_and_the_latest_version_is_sent_after() -> (
    None
):
    world = World()
    contact = await world.add(make_contact(first_name="Before"))
    world.gateway.fail_next(AcousticUnavailable("timed out"), times=1)
    await world.service.run_pass()
    edited = replace(contact, email=replace(contact.email, first_name="During"))
    async with world.uow() as uow:
        await uow.contacts.save(edited, previous=contact, expected_version=None)
        await uow.sync_queue.enqueue(contact.email_id, world.clock.now())
        await uow.commit()
    assert await world.counts() == QueueCounts(backlog=1, retry_backlog=0)
    assert (await world.service.run_pass()).count_total == 0  # still paused
    world.clock.advance(timedelta(seconds=10))
    assert (await world.service.run_pass()).counts == {"synced": 1}
    assert world.gateway.recipients[str(contact.email_id)]["first_name"] == "During"


async def test_the_memory_queue_records_an_outage_without_using_a_retry() -> None:
    world = World()
    contact = await world.add(make_contact())
    async with world.uow() as uow:
        assert await uow.sync_queue.route(("acoustic",), limit=10, now=NOW) == 1
        (item,) = await uow.sync_queue.claim(
            "acoustic", limit=1, now=NOW, lease_until=NOW + timedelta(minutes=1)
        )
        await uow.sync_queue.fail(
            "acoustic",
            contact.email_id,
            item.version,
            "AcousticUnavailable('x')",
            NOW,
            now=NOW,
            use_retry=False,
        )
        assert await uow.sync_queue.counts("acoustic") == QueueCounts(backlog=1, retry_backlog=1)
        (again,) = await uow.sync_queue.claim(
            "acoustic", limit=1, now=NOW, lease_until=NOW + timedelta(minutes=1)
        )
    assert (again.retry, again.last_error) == (0, "AcousticUnavailable('x')")
