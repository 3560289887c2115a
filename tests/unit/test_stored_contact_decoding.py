"""Reading a stored contact whose row holds a value its type refuses (an adopted ctms-api row): the value
is dropped, and a NULL flag reads as False whatever the field's default, since a NULL is not a consent."""

from __future__ import annotations

import msgspec

from ctms_adapters.postgres.contact_rows import decode_contact

EMAIL = {"primary_email": "a@example.com", "email_id": "8a3c5b7e-8f4b-4d3a-9c1e-2b6f0d4e5a71"}


def test_a_null_flag_reads_as_false_even_where_the_default_is_true() -> None:
    document = {
        "email": {**EMAIL, "double_opt_in": None},
        "newsletters": [{"name": "mozilla-foundation", "subscribed": None, "format": None}],
        "waitlists": [{"name": "vpn", "subscribed": None}],
    }
    contact = decode_contact(msgspec.json.encode(document).decode())
    assert contact.email.double_opt_in is False
    assert contact.newsletters[0].subscribed is False
    assert contact.newsletters[0].format == "H"
    assert contact.waitlists[0].subscribed is False
