"""Access-log redaction and trace detection (docs/contract.md §2.2, §11.2)."""

from __future__ import annotations

import pytest

from ctms_adapters.logging import is_traced, redact_headers, redact_query, traced_addresses
from ctms_adapters.logging.redaction import MAX_LOGGED_CHARS, MAX_LOGGED_ITEMS


def test_headers_are_lower_cased_and_credentials_omitted() -> None:
    """authorization and cookie are [OMITTED]; other headers kept, by lower-case name."""
    raw = [
        (b"Host", b"ctms.example"),
        (b"Authorization", b"Bearer abc.def.ghi"),
        (b"Cookie", b"session=1"),
        (b"X-Request-Id", b"rid-1"),
    ]
    assert redact_headers(raw) == {
        "host": "ctms.example",
        "authorization": "[OMITTED]",
        "cookie": "[OMITTED]",
        "x-request-id": "rid-1",
    }


def test_headers_mapping_and_repeated_names() -> None:
    """A mapping is accepted; a repeated header keeps its first value, as v3 did."""
    assert redact_headers({"Accept": "a", "COOKIE": "c"}) == {"accept": "a", "cookie": "[OMITTED]"}
    assert redact_headers([("accept", "first"), ("Accept", "second")]) == {"accept": "first"}


@pytest.mark.parametrize(
    "query",
    [
        "primary_email=a%40b.com&fxa_primary_email=c@d.com&limit=10&empty=",
        b"primary_email=a%40b.com&fxa_primary_email=c@d.com&limit=10&empty=",
        {"primary_email": "a@b.com", "fxa_primary_email": "c@d.com", "limit": "10", "empty": ""},
    ],
)
def test_query_omits_email_parameters(query: str | bytes | dict[str, str]) -> None:
    """primary_email and fxa_primary_email are [OMITTED]; other parameters kept, blanks too."""
    assert redact_query(query) == {
        "primary_email": "[OMITTED]",
        "fxa_primary_email": "[OMITTED]",
        "limit": "10",
        "empty": "",
    }


def test_repeated_query_parameter_keeps_the_last_value() -> None:
    """As v3's dict(request.query_params)."""
    assert redact_query("limit=1&limit=2") == {"limit": "2"}


@pytest.mark.parametrize(
    ("email", "traced"),
    [
        ("test+trace-me-mozilla-123@example.com", True),
        ("test+trace_me_mozilla_2024@example.com", True),
        ("+trace-me-mozilla-@example.com", True),
        ("test@example.com", False),
        ("test+trace-me-mozilla@example.com", False),
        ("test@example+trace-me-mozilla-.com", False),
        ("trace-me-mozilla-x@example.com", False),
    ],
)
def test_trace_markers_before_the_at_sign(email: str, traced: bool) -> None:
    """Both `+trace-me-mozilla-` and `+trace_me_mozilla_` before the @ ask for tracing."""
    assert is_traced(email) is traced


def test_traced_addresses_keeps_order_drops_duplicates_and_none() -> None:
    """Only tracing addresses, each once, in the order given."""
    assert traced_addresses(
        "b+trace-me-mozilla-1@example.com",
        None,
        "plain@example.com",
        "a+trace_me_mozilla_2@example.com",
        "b+trace-me-mozilla-1@example.com",
    ) == ["b+trace-me-mozilla-1@example.com", "a+trace_me_mozilla_2@example.com"]
    assert traced_addresses() == []


@pytest.mark.parametrize(
    "value",
    [
        "someone@example.com",
        "mailto:someone%40example.com",
        "Bearer abc.def",
        "basic c2NhbjpuZWQ=",
        "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
        "secret_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V",
    ],
)
def test_addresses_and_credentials_are_omitted_under_any_name(value: str) -> None:
    assert redact_headers({"X-Anything": value}) == {"x-anything": "[OMITTED]"}
    assert redact_query([("Anything", value)]) == {"Anything": "[OMITTED]"}


def test_listed_query_parameters_are_omitted_in_any_case() -> None:
    assert redact_query("Primary_Email=x&ACCESS_TOKEN=y&q=z") == {
        "Primary_Email": "[OMITTED]",
        "ACCESS_TOKEN": "[OMITTED]",
        "q": "z",
    }


def test_logged_values_and_the_number_of_items_are_bounded() -> None:
    huge = redact_headers({"X-Huge": "h" * 1_048_576})["x-huge"]
    assert huge == "h" * MAX_LOGGED_CHARS + f"…[{1_048_576 - MAX_LOGGED_CHARS} more characters]"
    many = redact_query([(f"p{index}", "v") for index in range(MAX_LOGGED_ITEMS + 5)])
    assert len(many) == MAX_LOGGED_ITEMS + 1
    assert many["[more]"] == "5 more not logged"
