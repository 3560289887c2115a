"""`AcousticDestination.deliver`: one AddRecipient per contact, relational rows of many contacts per
request, erasures batched, and failures reported per contact (docs/acoustic.md "Batched requests")."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence

import pytest

from ctms_adapters.memory.acoustic import RecordingAcousticGateway
from ctms_adapters.memory.request_slots import InMemoryRequestSlots
from ctms_core.domain.acoustic import AcousticConfiguration, AcousticDeletion, default_configuration
from ctms_core.ports.acoustic import (
    AcousticCall,
    AcousticFault,
    AcousticUnavailable,
    RelationalTable,
    RowsReport,
)
from ctms_core.ports.destinations import Delivery
from ctms_core.services.acoustic_destination import AcousticDestination
from tests.builders import make_contact, make_newsletter, make_waitlist


async def _configuration() -> AcousticConfiguration:
    return default_configuration()


def _upload(index: int, *, newsletters: int = 1, waitlists: int = 0) -> Delivery:
    contact = make_contact(
        email_id=uuid.UUID(int=index + 1),
        primary_email=f"contact{index}@example.com",
        newsletters=tuple(make_newsletter(f"news-{n}") for n in range(newsletters)),
        waitlists=tuple(make_waitlist(f"list-{n}") for n in range(waitlists)),
    )
    return Delivery(email_id=contact.email.email_id, contact=contact)


def _erasure(index: int, *, newsletters: tuple[str, ...] = ()) -> Delivery:
    email_id = uuid.UUID(int=index + 1)
    return Delivery(
        email_id=email_id,
        deletion=AcousticDeletion(
            email_id=email_id,
            primary_email=f"contact{index}@example.com",
            newsletter_names=newsletters,
        ),
    )


def _destination(
    gateway: RecordingAcousticGateway, *, concurrency: int = 10, rows_per_request: int = 100
) -> tuple[AcousticDestination, list[AcousticCall]]:
    calls: list[AcousticCall] = []
    destination = AcousticDestination(
        gateway,
        _configuration,
        concurrency=concurrency,
        on_call=calls.append,
        rows_per_request=rows_per_request,
    )
    return destination, calls


async def test_a_batch_costs_one_add_recipient_per_contact_and_one_request_per_table() -> None:
    gateway = RecordingAcousticGateway()
    destination, calls = _destination(gateway)
    deliveries = [_upload(i, newsletters=2, waitlists=1) for i in range(50)]

    report = await destination.deliver(deliveries)

    assert report.failed == ()
    assert sorted(gateway.requests) == sorted(
        [("add_recipient", "main", 1)] * 50
        + [
            ("insert_update_relational_table", "newsletter", 100),
            ("insert_update_relational_table", "waitlist", 50),
        ]
    )
    assert report.requests == 52 == len(calls)
    assert len(gateway.recipients) == 50
    assert len(gateway.rows["newsletter"]) == 100


async def test_relational_requests_never_carry_more_than_the_row_limit() -> None:
    gateway = RecordingAcousticGateway()
    destination, _ = _destination(gateway, rows_per_request=7)

    report = await destination.deliver([_upload(i, newsletters=2) for i in range(10)])

    relational = [rows for method, _, rows in gateway.requests if method != "add_recipient"]
    assert report.failed == ()
    assert sum(relational) == 20
    assert max(relational) <= 7
    assert len(gateway.rows["newsletter"]) == 20


async def test_a_refused_row_fails_only_the_contact_it_belongs_to() -> None:
    gateway = RecordingAcousticGateway()
    gateway.refuse_rows_of(str(uuid.UUID(int=3)))
    destination, _ = _destination(gateway)

    report = await destination.deliver([_upload(i) for i in range(5)])

    assert [(f.email_id, f.kind) for f in report.failed] == [(uuid.UUID(int=3), "rejected")]
    assert "Invalid value" in report.failed[0].reason


class _NewsletterTableDown(RecordingAcousticGateway):
    def __init__(self, failures: int | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    async def insert_update_rows(
        self, table: RelationalTable, rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        self.attempts += 1
        if self.failures is None or self.attempts <= self.failures:
            raise AcousticUnavailable("XML API answered HTTP 503", table=table)
        return await super().insert_update_rows(table, rows)


async def test_a_relational_request_refused_as_a_whole_fails_every_contact_it_carried() -> None:
    gateway = _NewsletterTableDown()
    destination, _ = _destination(gateway)
    with_rows = [_upload(i) for i in range(3)]
    without_rows = [_upload(i, newsletters=0) for i in range(3, 5)]

    report = await destination.deliver([*with_rows, *without_rows])

    assert sorted(f.email_id.int for f in report.failed) == [1, 2, 3]
    assert {f.kind for f in report.failed} == {"outage"}
    assert len(gateway.recipients) == 5
    assert gateway.attempts == 2  # sent once more before its contacts were failed


async def test_a_relational_request_refused_once_is_sent_again_and_nobody_fails() -> None:
    gateway = _NewsletterTableDown(failures=1)
    destination, _ = _destination(gateway)

    report = await destination.deliver([_upload(i) for i in range(3)])

    assert report.failed == ()
    assert len(gateway.rows["newsletter"]) == 3
    assert report.requests == 3 + 1  # the refused attempt raised before it reached the recorder


async def test_a_failed_add_recipient_fails_that_contact_and_keeps_its_rows_back() -> None:
    gateway = RecordingAcousticGateway()
    destination, _ = _destination(gateway, concurrency=1)
    gateway.fail_next(AcousticFault("Email Address Is Invalid", table="main"))

    report = await destination.deliver([_upload(i) for i in range(3)])

    assert [f.email_id for f in report.failed] == [uuid.UUID(int=1)]
    assert report.failed[0].kind == "rejected"
    sent = {row["email_id"] for row in gateway.rows["newsletter"]}
    assert sent == {str(uuid.UUID(int=2)), str(uuid.UUID(int=3))}


async def test_erasures_delete_rows_of_many_contacts_together_then_remove_each_recipient() -> None:
    gateway = RecordingAcousticGateway()
    destination, _ = _destination(gateway)

    report = await destination.deliver(
        [_erasure(i, newsletters=("a", "b")) for i in range(20)] + [_upload(100)]
    )

    assert report.failed == ()
    deletes = sorted(
        (table, rows) for method, table, rows in gateway.requests if method.startswith("delete")
    )
    assert deletes == [("newsletter", 40), ("product", 20), ("waitlist", 20)]
    assert len(gateway.removed) == 20


async def test_an_erasure_whose_rows_were_refused_keeps_its_recipient_and_is_retried() -> None:
    gateway = RecordingAcousticGateway()
    gateway.refuse_rows_of(str(uuid.UUID(int=2)))
    destination, _ = _destination(gateway)

    report = await destination.deliver([_erasure(i) for i in range(3)])

    assert [f.email_id for f in report.failed] == [uuid.UUID(int=2)]
    assert sorted(gateway.removed) == [str(uuid.UUID(int=1)), str(uuid.UUID(int=3))]


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_no_more_than_concurrency_requests_are_in_flight(concurrency: int) -> None:
    gateway = RecordingAcousticGateway(delay=0.001)
    destination, _ = _destination(gateway, concurrency=concurrency)

    await destination.deliver([_upload(i) for i in range(30)])

    assert gateway.max_in_flight == concurrency


async def test_the_in_memory_slots_cap_holders_across_callers() -> None:
    slots = InMemoryRequestSlots(3)

    async def hold() -> None:
        async with slots.acquire():
            await asyncio.sleep(0.001)

    await asyncio.gather(*(hold() for _ in range(20)))
    assert slots.max_held == 3
    assert slots.held == 0


async def test_each_contacts_log_line_has_the_status_and_duration_of_every_table_it_was_sent_to(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/contract.md §9.4 log fields: `<table>_status` / `<table>_duration_s` for the contact's own
    AddRecipient and each batched request that carried its rows, and no others."""
    gateway = RecordingAcousticGateway()
    destination, _ = _destination(gateway)

    with caplog.at_level(logging.DEBUG, logger="ctms.acoustic_service"):
        report = await destination.deliver([_upload(0, newsletters=2), _upload(1, newsletters=0)])

    assert report.failed == ()
    lines = {
        record.__dict__["email_id"]: record.__dict__
        for record in caplog.records
        if record.name == "ctms.acoustic_service"
    }
    with_rows, without_rows = lines[str(uuid.UUID(int=1))], lines[str(uuid.UUID(int=2))]
    assert (with_rows["main_status"], with_rows["newsletter_status"]) == ("success", "success")
    assert isinstance(with_rows["newsletter_duration_s"], float)
    assert "waitlist_status" not in with_rows
    assert without_rows["main_status"] == "success"
    assert "newsletter_status" not in without_rows
