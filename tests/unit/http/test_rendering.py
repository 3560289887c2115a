"""How contacts and pages are rendered (docs/contract.md §5.8): timestamps, defaults, key order, `next` links."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from ctms_core.domain.updates import UpdatesPage
from ctms_entrypoints.http.responses import (
    contact_body,
    encode_json,
    single_contact_body,
    timestamp,
    updates_body,
)
from tests.builders import contact_from_body
from tests.samples import sample


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2020, 12, 5, 19, 21, 50, 908000, tzinfo=UTC), "2020-12-05T19:21:50.908000+00:00"),
        (datetime(2010, 1, 1, 8, 4, tzinfo=UTC), "2010-01-01T08:04:00+00:00"),
        (
            datetime(2010, 1, 1, 10, 4, tzinfo=timezone(timedelta(hours=2))),
            "2010-01-01T08:04:00+00:00",
        ),
        (datetime(2010, 1, 1, 8, 4), "2010-01-01T08:04:00+00:00"),
        (None, None),
    ],
)
def test_timestamps_render_in_utc_with_an_offset_never_z(
    moment: datetime | None, text: str | None
) -> None:
    assert timestamp(moment) == text


def test_contact_lists_render_without_status_and_single_contacts_with_it_last() -> None:
    contact = contact_from_body(sample("example"))
    listed = json.loads(encode_json(contact_body(contact)))
    single = json.loads(encode_json(single_contact_body(contact)))
    assert "status" not in listed
    assert list(single)[-1] == "status"
    assert {key: value for key, value in single.items() if key != "status"} == listed
    assert single["amo"]["last_login"] == "2021-01-28"
    assert single["vpn_waitlist"] == {"geo": "fr", "platform": "ios,mac"}
    assert single["relay_waitlist"] == {"geo": "fr"}
    assert single["mofo"] == {
        "mofo_email_id": None,
        "mofo_contact_id": None,
        "mofo_relevant": False,
    }


def test_unsubscribed_waitlists_do_not_feed_the_computed_fields() -> None:
    body = sample("minimal")
    body["waitlists"] = [
        {"name": "relay", "subscribed": False, "fields": {"geo": "fr"}},
        {"name": "relay-vpn", "fields": {"geo": "de"}},
        {"name": "vpn", "subscribed": False, "fields": {"geo": "ca"}},
    ]
    rendered = msgspec.to_builtins(contact_body(contact_from_body(body)))
    assert rendered["relay_waitlist"] == {"geo": "de"}
    assert rendered["vpn_waitlist"] == {"geo": None, "platform": None}


def page(after: str | None, mofo_relevant: bool | None) -> UpdatesPage:
    return UpdatesPage(
        start=datetime(2020, 1, 1, tzinfo=UTC),
        end=datetime(2021, 1, 1, 12, 30, 0, 500, tzinfo=UTC),
        limit=10,
        mofo_relevant=mofo_relevant,
        items=(),
        after=after,
    )


def test_next_link_encodes_offsets_and_carries_mofo_relevant() -> None:
    body = updates_body(page("Y3Vyc29y", True), "https://ctms.example.com/")
    assert body.next == (
        "https://ctms.example.com/updates?start=2020-01-01T00%3A00%3A00%2B00%3A00"
        "&end=2021-01-01T12%3A30%3A00.000500%2B00%3A00&limit=10&after=Y3Vyc29y&mofo_relevant=true"
    )


def test_last_page_has_no_next_link() -> None:
    body = updates_body(page(None, None), "http://localhost:8000")
    assert (body.after, body.next) == (None, None)
    assert body.start == "2020-01-01T00:00:00+00:00"
