"""`/updates` query rules and the v3.3-compatible cursor (docs/contract.md §2.6, §7)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from ctms_core.domain.errors import ValidationFailedError
from ctms_core.domain.updates import Cursor, parse_updates_query

V3_CURSOR = "OTNkYjgzZDQtNDExOS00ZTBjLWFmODctYTcxMzc4NmZhODFkLDIwMjAtMDEtMjIgMTU6MjQ6MDArMDA6MDA="
V3_ID = uuid.UUID("93db83d4-4119-4e0c-af87-a713786fa81d")
V3_TIME = datetime(2020, 1, 22, 15, 24, tzinfo=UTC)


def test_cursor_encoding_matches_v3() -> None:
    assert Cursor(V3_ID, V3_TIME).encode() == V3_CURSOR
    assert Cursor.decode(V3_CURSOR) == Cursor(V3_ID, V3_TIME)


def test_cursor_with_microseconds_round_trips() -> None:
    moment = datetime(2021, 1, 28, 21, 26, 57, 511000, tzinfo=UTC)
    cursor = Cursor(V3_ID, moment)
    assert (
        base64.urlsafe_b64decode(cursor.encode())
        .decode()
        .endswith(",2021-01-28 21:26:57.511000+00:00")
    )
    assert Cursor.decode(cursor.encode()) == cursor


def test_cursor_decoding_is_lenient_about_alphabet_and_padding() -> None:
    assert Cursor.decode(V3_CURSOR.rstrip("=")) == Cursor(V3_ID, V3_TIME)
    standard = base64.b64encode(
        b"93db83d4-4119-4e0c-af87-a713786fa81d,2020-01-22T15:24:00Z"
    ).decode()
    assert Cursor.decode(standard) == Cursor(V3_ID, V3_TIME)


@pytest.mark.parametrize(
    "bad",
    [
        "hello",
        base64.urlsafe_b64encode(b"no comma here").decode(),
        base64.urlsafe_b64encode(b"not-a-uuid,2020-01-01").decode(),
        base64.urlsafe_b64encode(b"93db83d4-4119-4e0c-af87-a713786fa81d,yesterday").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_malformed_cursors_are_a_422(bad: str) -> None:
    with pytest.raises(ValidationFailedError) as raised:
        parse_updates_query({"start": "2020-01-01", "after": bad})
    [error] = raised.value.errors
    assert error.loc == ("query", "after")
    assert error.msg == "'after' param validation error when decoding value."


def test_defaults() -> None:
    query = parse_updates_query({"start": "2020-01-01T00:00:00+00:00"})
    assert (query.end, query.limit, query.after, query.mofo_relevant) == (None, 100, None, None)
    assert query.start == datetime(2020, 1, 1, tzinfo=UTC)


def test_empty_optional_parameters_take_their_defaults() -> None:
    query = parse_updates_query(
        {"start": "2020-01-01", "end": "", "limit": "", "after": "", "mofo_relevant": ""}
    )
    assert (query.end, query.limit, query.after, query.mofo_relevant) == (None, 100, None, None)


def test_naive_and_unix_timestamps_are_utc() -> None:
    assert parse_updates_query({"start": "2020-01-01 10:00"}).start == datetime(
        2020, 1, 1, 10, tzinfo=UTC
    )
    assert parse_updates_query({"start": "0"}).start == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "location", "message"),
    [
        ({}, "start", "field required"),
        ({"start": "not a date"}, "start", "invalid datetime format"),
        ({"start": "2020-01-01", "end": "later"}, "end", "invalid datetime format"),
        ({"start": "2020-01-01", "limit": "-3"}, "limit", '"limit" should be greater than 0'),
        ({"start": "2020-01-01", "limit": "0"}, "limit", '"limit" should be greater than 0'),
        (
            {"start": "2020-01-01", "limit": "1001"},
            "limit",
            '"limit" should be less than or equal to 1000',
        ),
        ({"start": "2020-01-01", "limit": "null"}, "limit", "value is not a valid integer"),
        (
            {"start": "2020-01-01", "mofo_relevant": "nah"},
            "mofo_relevant",
            "value could not be parsed to a boolean",
        ),
        (
            {"start": "2020-01-01", "after": "null"},
            "after",
            "'after' param validation error when decoding value.",
        ),
    ],
)
def test_invalid_parameters_are_located_in_the_query(
    params: dict[str, str], location: str, message: str
) -> None:
    with pytest.raises(ValidationFailedError) as raised:
        parse_updates_query(params)
    assert [(e.loc, e.msg) for e in raised.value.errors] == [(("query", location), message)]


@pytest.mark.parametrize(
    ("word", "value"), [("yes", True), ("TRUE", True), ("0", False), ("off", False)]
)
def test_mofo_relevant_accepts_boolean_words(word: str, value: bool) -> None:
    assert (
        parse_updates_query({"start": "2020-01-01", "mofo_relevant": word}).mofo_relevant is value
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailedError) as raised:
        parse_updates_query({"limit": "1001", "after": "hello"})
    assert [e.loc for e in raised.value.errors] == [
        ("query", "start"),
        ("query", "limit"),
        ("query", "after"),
    ]


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"])
def test_timestamps_that_do_not_fit_in_utc_are_a_422(edge: str) -> None:
    with pytest.raises(ValidationFailedError) as raised:
        parse_updates_query({"start": edge})
    assert raised.value.errors[0].loc == ("query", "start")


def test_offsets_are_normalised_to_utc() -> None:
    query = parse_updates_query({"start": "2020-01-01T02:00:00+02:00"})
    assert query.start == datetime(2020, 1, 1, tzinfo=UTC)
    assert query.start.utcoffset() is not None and query.start.tzinfo == UTC
