"""Upstream text (Acoustic fault strings, exception messages) is logged and stored with its addresses
redacted (docs/observability.md)."""

from __future__ import annotations

import pytest

from ctms_core.domain.redaction import redact_addresses
from ctms_core.ports.acoustic import AcousticFault


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Recipient jane@example.com rejected", "Recipient [OMITTED] rejected"),
        ("<Jane.Doe+news@mail.example.co.uk>", "<[OMITTED]>"),
        ("email=jane%40example.com&x=1", "email=[OMITTED]&x=1"),
        ("EMAIL jane&#64;example.com is invalid", "EMAIL [OMITTED] is invalid"),
        ("'a@b.c', 'd@e.f'", "'[OMITTED]', '[OMITTED]'"),
        ("Email Address Is Invalid", "Email Address Is Invalid"),
    ],
)
def test_addresses_in_upstream_text_are_redacted(text: str, redacted: str) -> None:
    assert redact_addresses(text) == redacted


def test_an_acoustic_error_never_carries_the_address_it_was_given() -> None:
    """The gateway builds its errors from Acoustic's text: the address is gone from the message, the
    fault string and the repr, whichever of them is logged or stored."""
    fault = AcousticFault("Recipient jane@example.com rejected", error_id="122")
    for text in (str(fault), fault.message, fault.fault_string, repr(fault)):
        assert "jane@example.com" not in text
        assert "Recipient [OMITTED] rejected" in text
