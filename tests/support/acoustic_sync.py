"""What the sync worker's integration tests share: the Acoustic table ids the worker is configured with,
the settings that point a `ctms sync` process at the fake Acoustic, the seeding of the Acoustic
configuration, and the check that the fake Acoustic holds a contact."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ctms_core.domain.acoustic import default_configuration, map_contact
from ctms_core.domain.contact import Contact
from ctms_core.domain.segments import Product
from ctms_core.ports.repositories import UnitOfWork
from tests.support.fake_acoustic import FakeAcoustic

LIST_ID, NEWSLETTERS, WAITLISTS, PRODUCTS = "1234", "9", "10", "11"


def fake_acoustic_settings(fake: FakeAcoustic) -> dict[str, str]:
    """The `CTMS_*` variables of a sync worker that uploads to `fake` (its own metrics port is free)."""
    return {
        "CTMS_ACOUSTIC_SYNC_FEATURE_FLAG": "true",
        "CTMS_ACOUSTIC_INTEGRATION_FEATURE_FLAG": "true",
        "CTMS_ACOUSTIC_BASE_URL": fake.base_url,
        "CTMS_ACOUSTIC_CLIENT_ID": fake.client_id,
        "CTMS_ACOUSTIC_CLIENT_SECRET": fake.client_secret,
        "CTMS_ACOUSTIC_REFRESH_TOKEN": fake.refresh_token,
        "CTMS_ACOUSTIC_MAIN_TABLE_ID": LIST_ID,
        "CTMS_ACOUSTIC_NEWSLETTER_TABLE_ID": NEWSLETTERS,
        "CTMS_ACOUSTIC_WAITLIST_TABLE_ID": WAITLISTS,
        "CTMS_ACOUSTIC_PRODUCT_SUBSCRIPTIONS_ID": PRODUCTS,
        "CTMS_BACKGROUND_METRICS_PORT": "0",
    }


async def seed_acoustic_configuration(uow_factory: Callable[[], UnitOfWork]) -> None:
    """Store `default_configuration()`: emptied tables lost migration 0005's seed."""
    configuration = default_configuration()
    async with uow_factory() as uow:
        for field in configuration.main_fields:
            await uow.acoustic_config.add_field("main", field)
        for field in configuration.waitlist_fields:
            await uow.acoustic_config.add_field("waitlist", field)
        for source, destination in configuration.newsletter_mapping.items():
            await uow.acoustic_config.add_newsletter_mapping(source, destination)
        await uow.commit()


def expect_uploaded(fake: FakeAcoustic, contact: Contact, products: Iterable[Product] = ()) -> None:
    """The fake holds exactly `contact`'s main-table row and its newsletter and waitlist rows."""
    record = map_contact(contact, list(products), default_configuration())
    email_id = str(contact.email_id)
    assert fake.recipient(LIST_ID, email_id) == record.main
    assert sorted(fake.rows(NEWSLETTERS, email_id), key=lambda r: r["newsletter_name"]) == list(
        record.newsletters
    )
    assert sorted(fake.rows(WAITLISTS, email_id), key=lambda r: r["waitlist_name"]) == list(
        record.waitlists
    )
