"""Contact → Acoustic rows (docs/contract.md §9.3), with the fixes of docs/contract.md §9.2, §9.3."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from ctms_core.domain.acoustic import (
    DEFAULT_MAIN_FIELDS,
    DEFAULT_NEWSLETTER_MAPPING,
    PRODUCT_COLUMNS,
    AcousticConfiguration,
    acoustic_text,
    default_configuration,
    deletion_of,
    map_contact,
)
from ctms_core.domain.contact import Amo, Fxa
from ctms_core.domain.segments import Product
from tests.builders import (
    contact_from_body,
    make_contact,
    make_email,
    make_newsletter,
    make_waitlist,
)
from tests.samples import sample

MAXIMAL_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"
AT = datetime(2021, 11, 8, 9, 6, tzinfo=UTC)
SUB_COLUMNS = list(
    dict.fromkeys(DEFAULT_NEWSLETTER_MAPPING[s] for s in sorted(DEFAULT_NEWSLETTER_MAPPING))
)


def maximal_main_row() -> dict[str, str]:
    subscribed = {"sub_common_voice", "sub_hubs", "sub_mozilla_festival", "sub_mozilla_foundation"}
    return {
        "email": "mozilla-fan@example.com",
        "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
        "double_opt_in": "1",
        "sfdc_id": "001A000001aMozFan",
        "first_name": "Fan",
        "last_name": "of Mozilla",
        "mailing_country": "ca",
        "email_format": "H",
        "email_lang": "fr",
        "has_opted_out_of_email": "0",
        "unsubscribe_reason": "done with this mailing list",
        "email_id": MAXIMAL_ID,
        "create_timestamp": "11/08/2021",
        "amo_add_on_ids": "fanfox,foxfan",
        "amo_display_name": "#1 Mozilla Fan",
        "amo_email_opt_in": "1",
        "amo_language": "fr,en",
        "amo_last_login": "01/27/2020",
        "amo_location": "The Inter",
        "amo_profile_url": "firefox/user/14508209",
        "amo_user": "Yes",
        "amo_user_id": "123",
        "amo_username": "Mozilla1Fan",
        "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
        "fxa_primary_email": "fxa-firefox-fan@example.com",
        "fxa_created_date": "05/22/2019 08:29:31",
        "fxa_lang": "fr,fr-CA",
        "fxa_first_service": "monitor",
        "fxa_account_deleted": "0",
        **{column: "1" if column in subscribed else "0" for column in SUB_COLUMNS},
        "relay_waitlist_geo": "cn",
        "vpn_waitlist_geo": "ca",
        "vpn_waitlist_platform": "windows,android",
    }


def newsletter_row(name: str, **values: str) -> dict[str, str]:
    row = {
        "email_id": MAXIMAL_ID,
        "newsletter_name": name,
        "newsletter_source": "",
        "newsletter_format": "H",
        "newsletter_lang": "en",
        "subscribed": "Yes",
        "newsletter_unsub_reason": "",
        "create_timestamp": "11/08/2021 09:06:00",
        "update_timestamp": "11/08/2021 09:06:00",
    }
    row.update(values)
    return row


def waitlist_row(name: str, **values: str) -> dict[str, str]:
    row = {
        "email_id": MAXIMAL_ID,
        "waitlist_name": name,
        "waitlist_source": "",
        "subscribed": "Yes",
        "unsub_reason": "",
        "create_timestamp": "11/08/2021 09:06:00",
        "update_timestamp": "11/08/2021 09:06:00",
        "waitlist_geo": "",
        "waitlist_platform": "",
    }
    row.update(values)
    return row


def make_product(**overrides: Any) -> Product:
    values: dict[str, Any] = {
        "payment_service": "stripe",
        "product_id": "prod_test",
        "segment": "active",
        "changed": datetime(2021, 9, 27, tzinfo=UTC),
        "sub_count": 1,
        "price_id": "price_test",
        "currency": "usd",
        "amount": 1000,
        "status": "active",
        "interval_count": 1,
        "interval": "month",
        "created": datetime(2021, 9, 27, tzinfo=UTC),
        "start": datetime(2021, 9, 27, tzinfo=UTC),
        "current_period_start": datetime(2021, 10, 27, tzinfo=UTC),
        "current_period_end": datetime(2021, 11, 27, tzinfo=UTC),
        "canceled_at": None,
        "cancel_at_period_end": False,
        "ended_at": None,
    }
    values.update(overrides)
    return Product(**values)


def test_the_maximal_contact_maps_to_the_reference_main_row_in_request_order() -> None:
    """Every main-table conversion of docs/contract.md §9.3 on the reference's maximal contact, column order included."""
    record = map_contact(contact_from_body(sample("maximal"), AT), [], default_configuration())

    assert list(record.main.items()) == list(maximal_main_row().items())
    assert str(record.email_id) == MAXIMAL_ID


def test_the_maximal_contact_maps_to_one_relational_row_per_newsletter_and_waitlist() -> None:
    """Subscribed or not, every newsletter and waitlist becomes a row, sorted by name (docs/contract.md §9.3)."""
    record = map_contact(contact_from_body(sample("maximal"), AT), [], default_configuration())

    assert list(record.newsletters) == [
        newsletter_row(
            "ambassadors",
            newsletter_source="https://www.mozilla.org/en-US/contribute/studentambassadors/",
            subscribed="No",
            newsletter_unsub_reason="Graduated, don't have time for FSA",
        ),
        newsletter_row(
            "common-voice",
            newsletter_source="https://commonvoice.mozilla.org/fr",
            newsletter_format="T",
            newsletter_lang="fr",
        ),
        newsletter_row("firefox-accounts-journey", subscribed="No", newsletter_lang="fr"),
        newsletter_row("firefox-os"),
        newsletter_row("hubs", newsletter_lang="fr"),
        newsletter_row("mozilla-festival"),
        newsletter_row("mozilla-foundation", newsletter_lang="fr"),
    ]
    assert list(record.waitlists) == [
        waitlist_row(
            "a-software", waitlist_source="https://a-software.mozilla.org/", waitlist_geo="fr"
        ),
        waitlist_row("relay", waitlist_geo="cn"),
        waitlist_row("super-product", waitlist_geo="fr", waitlist_platform="win64"),
        waitlist_row("vpn", waitlist_geo="ca", waitlist_platform="windows,android"),
    ]
    assert list(record.newsletters[0]) == [
        "email_id",
        "newsletter_name",
        "newsletter_source",
        "newsletter_format",
        "newsletter_lang",
        "subscribed",
        "newsletter_unsub_reason",
        "create_timestamp",
        "update_timestamp",
    ]


def test_the_maximal_contact_reports_unmapped_newsletters_and_its_log_facts() -> None:
    """`newsletters_skipped` lists unmapped slugs sorted; nothing is skipped with the seeded fields."""
    record = map_contact(contact_from_body(sample("maximal"), AT), [], default_configuration())

    assert record.log_context() == {
        "email_id": MAXIMAL_ID,
        "newsletter_count": 7,
        "product_count": 0,
        "newsletters_skipped": ["ambassadors", "firefox-os"],
        "skipped_fields": [],
        "fxa_created_date_converted": "success",
        "fxa_created_date_type": "str",
    }


def test_booleans_are_one_zero_for_the_four_flag_columns_and_yes_no_elsewhere() -> None:
    """`double_opt_in`, `has_opted_out_of_email`, `fxa_account_deleted`, `amo_email_opt_in` → 1/0."""
    contact = make_contact(
        email=make_email(double_opt_in=False, has_opted_out_of_email=True),
        amo=Amo(email_opt_in=False, user=False),
        fxa=Fxa(account_deleted=True),
        waitlists=(make_waitlist("vpn", subscribed=False),),
    )
    configuration = AcousticConfiguration(
        main_fields=frozenset(DEFAULT_MAIN_FIELDS) | {"vpn_waitlist_subscribed"},
        waitlist_fields=frozenset(),
        newsletter_mapping={},
    )

    main = map_contact(contact, [], configuration).main

    assert (main["double_opt_in"], main["has_opted_out_of_email"]) == ("0", "1")
    assert (main["amo_email_opt_in"], main["fxa_account_deleted"]) == ("0", "1")
    assert main["amo_user"] == "No"
    assert main["vpn_waitlist_subscribed"] == "No"


def test_timestamps_are_formatted_in_utc_even_from_another_offset() -> None:
    """An aware datetime in UTC-5 is converted before formatting (docs/contract.md §9.3); dates stay dates."""
    eastern = timezone(timedelta(hours=-5))
    late_evening = datetime(2021, 11, 7, 22, 30, 15, tzinfo=eastern)  # 03:30:15 UTC the next day
    contact = make_contact(
        email=make_email(create_timestamp=late_evening),
        newsletters=(
            make_newsletter("hubs", create_timestamp=late_evening, update_timestamp=late_evening),
        ),
    )

    record = map_contact(contact, [], default_configuration())

    assert record.main["create_timestamp"] == "11/08/2021"
    assert record.newsletters[0]["create_timestamp"] == "11/08/2021 03:30:15"
    assert acoustic_text(datetime(2021, 11, 8, 9, 6)) == "11/08/2021 09:06:00"
    assert acoustic_text(date(2021, 11, 8)) == "11/08/2021"


def test_newsletter_flags_start_at_zero_and_any_subscribed_source_sets_a_shared_column() -> None:
    """`mozilla-and-you` and `firefox-news` share `sub_firefox_news`; unsubscribed ones leave it 0."""
    contact = make_contact(
        newsletters=(
            make_newsletter("firefox-news", subscribed=False),
            make_newsletter("mozilla-and-you"),
            make_newsletter("app-dev", subscribed=False),
            make_newsletter("not-mapped"),
        ),
    )

    record = map_contact(contact, [], default_configuration())

    flags = {column: value for column, value in record.main.items() if column.startswith("sub_")}
    assert list(flags) == SUB_COLUMNS
    assert {column for column, value in flags.items() if value == "1"} == {"sub_firefox_news"}
    assert record.newsletters_skipped == ("not-mapped",)


def test_fields_outside_the_configuration_are_reported_except_the_known_ignored_ones() -> None:
    """`skipped_fields` names `group.field`; update timestamps and amo create are silently ignored."""
    contact = make_contact(amo=Amo(user=True), fxa=Fxa(fxa_id="abc"))
    configuration = AcousticConfiguration(
        main_fields=frozenset({"email", "email_id", "fxa_id"}),
        waitlist_fields=frozenset(),
        newsletter_mapping={},
    )

    record = map_contact(contact, [], configuration)

    assert list(record.main) == ["email", "email_id", "fxa_id"]
    assert "email.mailing_country" in record.skipped_fields
    assert "amo.user" in record.skipped_fields
    assert "fxa.primary_email" in record.skipped_fields
    assert not {"email.update_timestamp", "amo.create_timestamp", "amo.update_timestamp"} & set(
        record.skipped_fields
    )


def test_email_id_is_always_sent_even_when_the_configuration_forgets_it() -> None:
    """v3.3 crashed without `email_id` in the main fields; it is the sync key, so it is always sent."""
    configuration = AcousticConfiguration(
        main_fields=frozenset({"email"}), waitlist_fields=frozenset(), newsletter_mapping={}
    )
    contact = make_contact()

    assert map_contact(contact, [], configuration).main["email_id"] == str(contact.email_id)


def test_amo_and_fxa_columns_are_omitted_without_their_rows() -> None:
    """No satellite row ⇒ no `amo_*`/`fxa_*` columns at all, not blank ones (docs/contract.md §9.3)."""
    record = map_contact(contact_from_body(sample("minimal"), AT), [], default_configuration())

    assert not [c for c in record.main if c.startswith(("amo_", "fxa_"))]
    assert record.fxa_created_date_converted == "skipped"
    assert record.main["vpn_waitlist_geo"] == ""


@pytest.mark.parametrize(
    ("created_date", "text", "outcome"),
    [
        ("2019-05-22T08:29:31.906094+00:00", "05/22/2019 08:29:31", "success"),
        ("2019-05-22T10:29:31+02:00", "05/22/2019 08:29:31", "success"),
        ("2019-05-22", "05/22/2019 00:00:00", "success"),
        ("not a date", "not a date", "failure"),
    ],
)
def test_fxa_created_date_is_parsed_leniently_and_sent_unchanged_when_unparseable(
    created_date: str, text: str, outcome: str
) -> None:
    """docs/contract.md §9.3: parsed dates use the datetime format; anything else is sent as given."""
    record = map_contact(
        make_contact(fxa=Fxa(created_date=created_date)), [], default_configuration()
    )

    assert record.main["fxa_created_date"] == text
    assert record.fxa_created_date_converted == outcome


def test_waitlist_fields_of_any_json_type_are_flattened_to_text_without_crashing() -> None:
    """Numbers, booleans, lists and objects in `fields` become text (docs/contract.md §9.2)."""
    contact = make_contact(
        waitlists=(
            make_waitlist(
                "vpn",
                fields={
                    "geo": 42,
                    "platform": ["ios", "mac"],
                    "extra": {"a": 1},
                    "beta": True,
                    "ratio": 0.5,
                    "nothing": None,
                },
            ),
        )
    )
    configuration = AcousticConfiguration(
        main_fields=frozenset({"email_id", "vpn_waitlist_geo", "vpn_waitlist_extra"}),
        waitlist_fields=frozenset(
            {"geo", "platform", "extra", "beta", "ratio", "nothing", "absent"}
        ),
        newsletter_mapping={},
    )

    record = map_contact(contact, [], configuration)

    row = record.waitlists[0]
    assert [
        column
        for column in row
        if column.startswith("waitlist_")
        and column != "waitlist_name"
        and column != "waitlist_source"
    ] == [
        "waitlist_absent",
        "waitlist_beta",
        "waitlist_extra",
        "waitlist_geo",
        "waitlist_nothing",
        "waitlist_platform",
        "waitlist_ratio",
    ]
    assert (row["waitlist_geo"], row["waitlist_platform"]) == ("42", '["ios","mac"]')
    assert (row["waitlist_extra"], row["waitlist_beta"], row["waitlist_ratio"]) == (
        '{"a":1}',
        "Yes",
        "0.5",
    )
    assert (row["waitlist_nothing"], row["waitlist_absent"]) == ("", "")
    assert (record.main["vpn_waitlist_geo"], record.main["vpn_waitlist_extra"]) == ("42", '{"a":1}')


def test_flat_waitlist_columns_read_attributes_and_tolerate_underscored_names() -> None:
    """`<name>_waitlist_<field>`: attributes first, then `fields`; extra underscores no longer crash."""
    contact = make_contact(
        waitlists=(
            make_waitlist(
                "relay", source="https://relay.example/", subscribed=False, fields={"geo": "fr"}
            ),
            make_waitlist("my_product", fields={"geo_zone": "eu"}),
        )
    )
    configuration = AcousticConfiguration(
        main_fields=frozenset(
            {
                "relay_waitlist_geo",
                "relay_waitlist_source",
                "my_product_waitlist_geo_zone",
                "vpn_waitlist_geo",
            }
        ),
        waitlist_fields=frozenset(),
        newsletter_mapping={},
    )

    main = map_contact(contact, [], configuration).main

    assert main["relay_waitlist_geo"] == "fr"  # unsubscribed waitlists still provide values
    assert main["relay_waitlist_source"] == "https://relay.example/"
    assert main["my_product_waitlist_geo_zone"] == "eu"
    assert main["vpn_waitlist_geo"] == ""


def test_a_product_maps_to_the_reference_example_row() -> None:
    """docs/contract.md §9.3's example product row, column for column, in the table's order."""
    contact = contact_from_body(sample("maximal"), AT)

    record = map_contact(contact, [make_product()], default_configuration())

    assert record.products == (
        {
            "email_id": MAXIMAL_ID,
            "product_name": "",
            "product_id": "prod_test",
            "price_id": "price_test",
            "segment": "active",
            "changed": "09/27/2021 00:00:00",
            "sub_count": "1",
            "payment_service": "stripe",
            "payment_type": "",
            "card_brand": "",
            "card_last4": "",
            "billing_country": "",
            "currency": "usd",
            "amount": "1000",
            "status": "active",
            "interval_count": "1",
            "interval": "month",
            "created": "09/27/2021 00:00:00",
            "start": "09/27/2021 00:00:00",
            "current_period_start": "10/27/2021 00:00:00",
            "current_period_end": "11/27/2021 00:00:00",
            "canceled_at": "",
            "ended_at": "",
            "cancel_at_period_end": "No",
        },
    )
    assert list(record.products[0]) == list(PRODUCT_COLUMNS)
    assert record.product_count == 1


def test_products_with_unknown_amounts_use_minus_one_and_are_sorted_by_product_id() -> None:
    """Null amount / interval count are `-1`; cancellation datetimes are formatted (docs/contract.md §9.3)."""
    products = [
        make_product(product_id="prod_b"),
        make_product(
            product_id="prod_a",
            amount=None,
            interval_count=None,
            interval=None,
            canceled_at=datetime(2021, 10, 1, 12, tzinfo=UTC),
            cancel_at_period_end=True,
        ),
    ]

    record = map_contact(make_contact(), products, default_configuration())

    assert [row["product_id"] for row in record.products] == ["prod_a", "prod_b"]
    first = record.products[0]
    assert (first["amount"], first["interval_count"], first["interval"]) == ("-1", "-1", "")
    assert (first["canceled_at"], first["cancel_at_period_end"]) == ("10/01/2021 12:00:00", "Yes")


def test_a_traced_address_is_reported_for_the_log() -> None:
    """Both spellings of the tracing marker set `trace` (docs/contract.md §11.1, §11.2)."""
    traced = make_contact(primary_email="fan+trace-me-mozilla-1@example.com")
    also_traced = make_contact(primary_email="fan+trace_me_mozilla_1@example.com")

    assert map_contact(traced, [], default_configuration()).log_context()["trace"] == (
        "fan+trace-me-mozilla-1@example.com"
    )
    assert map_contact(also_traced, [], default_configuration()).trace is not None
    assert "trace" not in map_contact(make_contact(), [], default_configuration()).log_context()


def test_the_mapping_is_deterministic_whatever_the_configuration_order() -> None:
    """Same contact and same configuration content in another order ⇒ identical record."""
    contact = contact_from_body(sample("maximal"), AT)
    reversed_mapping = dict(reversed(list(DEFAULT_NEWSLETTER_MAPPING.items())))
    shuffled = AcousticConfiguration(
        main_fields=frozenset(reversed(DEFAULT_MAIN_FIELDS)),
        waitlist_fields=frozenset({"platform", "geo"}),
        newsletter_mapping=reversed_mapping,
    )

    assert map_contact(contact, [], shuffled) == map_contact(contact, [], default_configuration())


def test_the_default_configuration_is_the_seed_of_the_v3_migrations() -> None:
    """docs/contract.md §9.7: 36 main fields, 2 waitlist fields, 21 newsletter mappings."""
    configuration = default_configuration()

    assert len(configuration.main_fields) == 36
    assert configuration.waitlist_fields == {"geo", "platform"}
    assert len(configuration.newsletter_mapping) == 21
    assert configuration.newsletter_mapping["mozilla-and-you"] == "sub_firefox_news"


def test_a_deletion_captures_the_keys_of_the_contacts_relational_rows() -> None:
    """`deletion_of` keeps the id, the address and the names of the rows to remove (docs/contract.md §9.5)."""
    contact = contact_from_body(sample("maximal"), AT)

    deletion = deletion_of(
        contact, [make_product(product_id="prod_b"), make_product(product_id="prod_a")]
    )

    assert deletion.email_id == uuid.UUID(MAXIMAL_ID)
    assert deletion.primary_email == "mozilla-fan@example.com"
    assert deletion.newsletter_names[:2] == ("ambassadors", "common-voice")
    assert deletion.waitlist_names == ("a-software", "relay", "super-product", "vpn")
    assert deletion.product_ids == ("prod_a", "prod_b")
