"""Field coercion and validation rules of docs/contract.md §5.2; docs/compatibility.md §2 (lenient like v3.3, sized like the columns)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from ctms_core.domain import fields as f
from ctms_core.domain.errors import FieldError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        ("yes", True),
        ("No", False),
        ("on", True),
        ("OFF", False),
        ("t", True),
        ("f", False),
        ("y", True),
        ("n", False),
        ("1", True),
        ("0", False),
    ],
)
def test_booleans_accept_v3_spellings(raw: Any, expected: bool) -> None:
    assert f.boolean(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", 2, -1, "", None, [], 0.5])
def test_booleans_refuse_other_values(raw: Any) -> None:
    with pytest.raises(f.InvalidValue) as raised:
        f.boolean(raw)
    assert raised.value.type == "type_error.bool"


def test_numbers_are_accepted_for_strings_as_decimal_text() -> None:
    assert f.text(50)(1337) == "1337"
    assert f.text(50)(1.5) == "1.5"


@pytest.mark.parametrize("raw", [True, [], {}, None])
def test_non_scalar_values_are_not_strings(raw: Any) -> None:
    with pytest.raises(f.InvalidValue):
        f.text(10)(raw)


def test_strings_longer_than_the_column_are_refused() -> None:
    assert f.text(5)("abcde") == "abcde"
    with pytest.raises(f.InvalidValue) as raised:
        f.text(5)("abcdef")
    assert raised.value.msg == "ensure this value has at most 5 characters"


@pytest.mark.parametrize(
    "address",
    [
        "a@b",
        "first.last+tag@example.com",
        "x@localhost",
        "ünïcode@exämple.org",
        "+trace-me-mozilla-1@x.y",
    ],
)
def test_plausible_primary_emails_are_accepted(address: str) -> None:
    assert f.email_address(255)(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "no-at-sign",
        "@example.com",
        "local@",
        "two@@example.com",
        "a@b@c",
        "sp ace@example.com",
        "tab\t@example.com",
        "x" * 250 + "@example.com",
    ],
)
def test_malformed_primary_emails_are_refused(address: str) -> None:
    with pytest.raises(f.InvalidValue):
        f.email_address(255)(address)


@pytest.mark.parametrize(
    "value",
    [
        "https://www.mozilla.org/en-US/",
        "http://localhost:8888/v1",
        "http://127.0.0.1:8000/path?q=1#frag",
        "http://[::1]:80/",
        "ftp://files.example.com",
        "  https://padded.example.com  ",
    ],
)
def test_urls_like_pydantic_anyurl_are_accepted(value: str) -> None:
    assert f.url(value) == value.strip()


@pytest.mark.parametrize(
    "value",
    ["", "foobar", "*&^", "http://", "https://exa mple.com", "http://host:99999/", "//no-scheme"],
)
def test_invalid_urls_are_refused(value: str) -> None:
    with pytest.raises(f.InvalidValue):
        f.url(value)


def test_url_numbers_are_refused() -> None:
    with pytest.raises(f.InvalidValue):
        f.url(42)


def test_international_hosts_become_punycode() -> None:
    assert f.url("https://bücher.example/x") == "https://xn--bcher-kva.example/x"


def test_uuid_rules() -> None:
    v4 = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"
    assert f.uuid4(v4.upper()) == uuid.UUID(v4)
    assert f.uuid_text(v4.upper()) == v4
    with pytest.raises(f.InvalidValue) as raised:
        f.uuid4("6ba7b810-9dad-11d1-80b4-00c04fd430c8")  # version 1
    assert raised.value.type == "value_error.uuid.version"
    with pytest.raises(f.InvalidValue):
        f.any_uuid("not-a-uuid")


def test_dates_are_iso_days() -> None:
    assert f.iso_date("2020-01-27") == date(2020, 1, 27)
    assert f.iso_date("2020-01-27T10:00:00+00:00") == date(2020, 1, 27)
    with pytest.raises(f.InvalidValue):
        f.iso_date("27/01/2020")


def test_choice_lists_the_permitted_values() -> None:
    with pytest.raises(f.InvalidValue) as raised:
        f.choice("H", "T")("X")
    assert "'H', 'T'" in raised.value.msg


def test_parse_object_reports_every_error_with_its_location() -> None:
    specs = (
        f.Field("a", f.text(2)),
        f.Field("b", f.boolean, nullable=False, default=False),
        f.Field("c", f.text(), required=True),
    )
    errors: list[FieldError] = []
    result = f.parse_object({"a": "long", "b": None, "zzz": 1}, specs, ("body", "x"), errors)
    assert result == {}
    assert [(e.loc, e.type) for e in errors] == [
        (("body", "x", "a"), "value_error.any_str.max_length"),
        (("body", "x", "b"), "type_error.none.not_allowed"),
        (("body", "x", "c"), "value_error.missing"),
    ]


def test_parse_object_partial_returns_only_present_keys() -> None:
    specs = (f.Field("a", f.text()), f.Field("b", f.boolean, default=True))
    errors: list[FieldError] = []
    assert f.parse_object({"b": "no"}, specs, (), errors, partial=True) == {"b": False}
    assert f.parse_object({}, specs, (), errors, partial=False) == {"a": None, "b": True}
    assert errors == []


def test_parse_object_refuses_non_objects() -> None:
    errors: list[FieldError] = []
    f.parse_object("REMOVE", (), ("body", "amo"), errors)
    assert errors == [FieldError(("body", "amo"), "value is not a valid dict", "type_error.dict")]
