"""`HttpxAcousticGateway` against the fake Acoustic server over real HTTP (docs/contract.md §9): its
requests alone, and in the sequences `AcousticDestination` makes of them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from ctms_adapters.acoustic import HttpxAcousticGateway
from ctms_core.domain.acoustic import (
    AcousticConfiguration,
    default_configuration,
    deletion_of,
    map_contact,
)
from ctms_core.domain.contact import Contact
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticCall,
    AcousticFault,
    AcousticUnavailable,
)
from ctms_core.ports.destinations import Delivery, DeliveryReport
from ctms_core.services.acoustic_destination import AcousticDestination
from tests.builders import contact_from_body, make_contact
from tests.samples import sample
from tests.support.fake_acoustic import FakeAcoustic, running_fake_acoustic

LIST_ID, NEWSLETTERS, WAITLISTS, PRODUCTS = "1234", "9", "10", "11"
AT = datetime(2021, 11, 8, 9, 6, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeAcoustic]:
    with running_fake_acoustic(hang_seconds=3.0) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as http:
        yield http


def gateway_for(
    fake: FakeAcoustic, client: httpx.AsyncClient, timeout: float = 2.0
) -> HttpxAcousticGateway:
    return HttpxAcousticGateway(
        client,
        base_url=fake.base_url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        refresh_token=fake.refresh_token,
        main_table_id=LIST_ID,
        newsletter_table_id=NEWSLETTERS,
        waitlist_table_id=WAITLISTS,
        product_table_id=PRODUCTS,
        timeout=timeout,
    )


def maximal() -> Contact:
    return contact_from_body(sample("maximal"), AT)


async def _configuration() -> AcousticConfiguration:
    return default_configuration()


async def deliver(
    gateway: HttpxAcousticGateway,
    deliveries: list[Delivery],
    calls: list[AcousticCall] | None = None,
    concurrency: int = 5,
) -> DeliveryReport:
    """`deliveries` sent as the sync worker sends them (`AcousticDestination`), through `gateway`."""
    destination = AcousticDestination(
        gateway,
        _configuration,
        concurrency=concurrency,
        on_call=(calls.append if calls is not None else lambda call: None),
    )
    return await destination.deliver(deliveries)


def upload_of(contact: Contact) -> Delivery:
    return Delivery(email_id=contact.email.email_id, contact=contact)


def erasure_of(contact: Contact) -> Delivery:
    return Delivery(email_id=contact.email.email_id, deletion=deletion_of(contact))


async def test_an_upload_lands_in_the_main_and_relational_tables(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """What the fake holds after one upload is exactly the mapped record."""
    contact = maximal()
    record = map_contact(contact, [], default_configuration())
    calls: list[AcousticCall] = []

    report = await deliver(gateway_for(fake, client), [upload_of(contact)], calls)

    email_id = str(contact.email_id)
    assert fake.recipient(LIST_ID, email_id) == record.main
    assert sorted(r["newsletter_name"] for r in fake.rows(NEWSLETTERS, email_id)) == [
        n.name for n in contact.newsletters
    ]
    assert len(fake.rows(WAITLISTS, email_id)) == 4
    assert fake.rows(PRODUCTS) == []
    assert [c.operation for c in fake.calls] == [
        "AddRecipient",
        "InsertUpdateRelationalTable",
        "InsertUpdateRelationalTable",
    ]
    assert fake.calls[0].sync_fields == {"email_id": email_id}
    assert report.failed == ()
    assert report.requests == 3
    assert [c.status for c in calls] == ["success"] * 3
    assert len(fake.token_requests) == 1


async def test_a_second_upload_updates_the_recipient_and_its_rows_in_place(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """Update-if-found on the main table, insert-or-update on relational rows: no duplicates."""
    gateway = gateway_for(fake, client)
    contact = maximal()
    assert (await deliver(gateway, [upload_of(contact)])).failed == ()
    renamed = msgspec.structs.replace(
        contact, email=msgspec.structs.replace(contact.email, first_name="Zoé")
    )

    assert (await deliver(gateway, [upload_of(renamed)])).failed == ()

    stored = fake.recipient(LIST_ID, str(contact.email_id))
    assert stored is not None
    assert stored["first_name"] == "Zoé"
    assert len(fake.rows(NEWSLETTERS, str(contact.email_id))) == 7


async def test_an_erasure_removes_the_recipient_and_its_relational_rows(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """docs/contract.md §14.2: after erase, Acoustic holds nothing for the contact; erasing again still succeeds."""
    gateway = gateway_for(fake, client)
    contact = maximal()
    assert (await deliver(gateway, [upload_of(contact)])).failed == ()

    assert (await deliver(gateway, [erasure_of(contact)])).failed == ()
    assert (await deliver(gateway, [erasure_of(contact)])).failed == ()

    email_id = str(contact.email_id)
    assert fake.recipient(LIST_ID, email_id) is None
    assert fake.rows(NEWSLETTERS, email_id) == fake.rows(WAITLISTS, email_id) == []
    assert fake.calls_of("RemoveRecipient")[0].email == "mozilla-fan@example.com"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("fault", AcousticFault),
        ("failures", AcousticFault),
        ("success_false", AcousticFault),
        ("html500", AcousticUnavailable),
        ("disconnect", AcousticUnavailable),
    ],
)
async def test_each_scripted_fault_surfaces_as_its_exception(
    fake: FakeAcoustic, client: httpx.AsyncClient, kind: str, error: type[Exception]
) -> None:
    """The fake's fault kinds over real HTTP map to the port's error classes; nothing is stored."""
    fake.fail_next(kind)  # type: ignore[arg-type]
    contact = make_contact()

    with pytest.raises(error):
        await gateway_for(fake, client).add_recipient(
            map_contact(contact, [], default_configuration())
        )

    assert fake.recipient(LIST_ID, str(contact.email_id)) is None


async def test_a_fault_reports_acoustics_message(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """FaultString and errorid reach the exception (and so `last_error`)."""
    fake.fail_next("fault", fault_string="Email Address Is Invalid", error_id="1017")

    with pytest.raises(AcousticFault) as raised:
        await gateway_for(fake, client).add_recipient(
            map_contact(make_contact(), [], default_configuration())
        )

    assert (raised.value.fault_string, raised.value.error_id) == (
        "Email Address Is Invalid",
        "1017",
    )


async def test_a_hanging_server_is_a_timeout(fake: FakeAcoustic, client: httpx.AsyncClient) -> None:
    """No answer within the configured timeout → unavailable, promptly."""
    fake.fail_next("hang")
    started = time.perf_counter()

    with pytest.raises(AcousticUnavailable, match="timed out"):
        await gateway_for(fake, client, timeout=0.3).add_recipient(
            map_contact(make_contact(), [], default_configuration())
        )

    assert time.perf_counter() - started < 2.0


async def test_a_rejected_refresh_token_is_an_auth_error(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """The grant answers 400 invalid_grant: AcousticAuthError, and no XML API call is made."""
    fake.fail_token()

    with pytest.raises(AcousticAuthError, match="invalid_grant"):
        await gateway_for(fake, client).add_recipient(
            map_contact(make_contact(), [], default_configuration())
        )

    assert fake.calls == []


async def test_revoked_access_tokens_are_refreshed_transparently(
    fake: FakeAcoustic, client: httpx.AsyncClient
) -> None:
    """Acoustic forgets the token (HTTP 401): one new grant, the request succeeds."""
    gateway = gateway_for(fake, client)
    await gateway.add_recipient(map_contact(make_contact(), [], default_configuration()))
    fake.revoke_tokens()

    call = await gateway.add_recipient(map_contact(make_contact(), [], default_configuration()))

    assert call.status == "success"

    assert len(fake.token_requests) == 2


async def test_concurrent_uploads_are_served_concurrently_despite_latency(
    client: httpx.AsyncClient,
) -> None:
    """50 ms per request, 40 contacts, 20 requests at a time: far faster than serially; one request per
    contact and table at a time."""
    with running_fake_acoustic(latency_s=0.05) as fake:
        gateway = gateway_for(fake, client)
        contacts = [make_contact() for _ in range(40)]

        started = time.perf_counter()
        report = await deliver(gateway, [upload_of(c) for c in contacts], concurrency=20)
        elapsed = time.perf_counter() - started

    assert report.failed == ()

    assert elapsed < 40 * 0.05 / 2  # serial would take ≥ 2 s
    assert fake.max_in_flight > 1
    assert max(fake.max_in_flight_per_recipient.values()) == 1
    assert len(fake.recipients[LIST_ID]) == 40
