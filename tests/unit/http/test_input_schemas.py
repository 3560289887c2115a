"""The documented contact bodies accept every value the core accepts (docs/contract.md §5.5).

schemathesis (tests/integration/schemathesis) sends values the document calls invalid and expects a 4xx: a
document stricter than the core fails it, and only for the few values it happens to draw. These tests pin
the lenient cases — numbers for text, `0`/`1`/`"YES"` for booleans, UUIDs, dates and URLs in the spellings
Python reads — through the core's own parse functions and the app's document, validated as schemathesis
validates (jsonschema-rs with its fancy-regex engine), so document and code cannot drift apart silently.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema_rs  # a dependency of schemathesis: validates instances against the document's schemas
import pytest

from ctms_core.domain import fields
from ctms_core.domain.contact import (
    AMO_FIELDS,
    EMAIL_FIELDS,
    FXA_FIELDS,
    MOFO_FIELDS,
    NEWSLETTER_FIELDS,
    WAITLIST_FIELDS,
)
from ctms_core.domain.errors import ValidationFailedError
from ctms_core.domain.fields import FALSE_WORDS, TRUE_WORDS, WHITESPACE
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from tests.http_harness import make_settings

EMAIL_ID = "8a3c5b7e-8f4b-4d3a-9c1e-2b6f0d4e5a71"
UUID1 = "c232ab00-9414-11ec-b3c8-9e6bdeced846"


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(
        build_container(make_settings(), **memory_storage())
    ).openapi_schema.to_schema()
    return document


@cache
def _validator(component: str) -> Any:
    """A validator of one documented body, as schemathesis builds it (formats checked, fancy-regex)."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": _document()["components"]}
    return jsonschema_rs.Draft202012Validator(
        schema, validate_formats=True, pattern_options=jsonschema_rs.FancyRegexOptions()
    )


def _post(body: dict[str, Any]) -> object:
    return parse_contact_input(body, require_email_id=False)


def _put(body: dict[str, Any]) -> object:
    return parse_contact_input(body, require_email_id=True)


Operation = tuple[str, Callable[[dict[str, Any]], object], dict[str, Any]]
POST: Operation = ("ContactInSchema", _post, {"email": {"primary_email": "a@example.com"}})
PUT: Operation = (
    "ContactPutSchema",
    _put,
    {"email": {"primary_email": "a@example.com", "email_id": EMAIL_ID}},
)
PATCH: Operation = ("ContactPatchSchema", parse_contact_patch, {})
OPERATIONS = {"POST": POST, "PUT": PUT, "PATCH": PATCH}


def _body_with(base: dict[str, Any], place: str, key: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    if place in ("newsletters", "waitlists"):
        body[place] = [{"name": "item", key: value}]
    elif place == "":
        body[key] = value
    else:
        body.setdefault(place, {})[key] = value
    return body


def _core_accepts(parse: Callable[[dict[str, Any]], object], body: dict[str, Any]) -> bool:
    try:
        parse(body)
    except ValidationFailedError:
        return False
    return True


# (where, key, value): values the core accepts, which the document must accept too.
ACCEPTED = [
    ("fxa", "primary_email", 5.0),  # the CI finding: a number for text
    ("fxa", "fxa_id", 1337),
    ("fxa", "fxa_id", -1.5e-7),
    ("email", "first_name", 10**40),
    ("email", "email_lang", 12345),
    ("amo", "user_id", 0),
    ("mofo", "mofo_email_id", 3.25),
    ("newsletters", "unsub_reason", 7),
    ("", "vpn_waitlist", {"geo": 33, "platform": 1.5}),
    ("email", "double_opt_in", 0),
    ("email", "double_opt_in", 1),
    ("email", "has_opted_out_of_email", "YES"),
    ("amo", "email_opt_in", " off "),
    ("amo", "user", "T"),
    ("fxa", "account_deleted", "n"),
    ("mofo", "mofo_relevant", "\u3000On\u2028"),
    ("newsletters", "subscribed", "fAlSe"),
    ("waitlists", "subscribed", "y"),
    ("email", "basket_token", UUID1),
    ("email", "basket_token", UUID1.replace("-", "").upper()),
    ("email", "basket_token", f"{{{UUID1}}}"),
    ("email", "basket_token", f"urn:uuid:{UUID1}"),
    ("email", "basket_token", f" 0x{UUID1.replace('-', '')[3:]}"),  # int(..., 16) reads it
    ("email", "basket_token", "\u0663" * 32),  # Arabic-Indic digits: int(..., 16) reads them
    ("email", "email_id", EMAIL_ID.replace("-", "")),
    ("email", "email_id", f"{{{EMAIL_ID.upper()}}}"),
    ("amo", "last_login", "2020-12-05"),
    ("amo", "last_login", " 20201205 "),
    ("amo", "last_login", "2020-W49-6"),
    ("amo", "last_login", "2020-12-05T19:21:50.908+00:00"),
    ("amo", "last_login", "2020-12-05 19:21"),
    ("amo", "last_login", "20201205xy"),  # Python 3.11 ignores the last two of ten characters
    ("newsletters", "source", "https://www.mozilla.org/en-US/firefox/?utm=1#x"),
    ("newsletters", "source", "  HTTP://user:pw@[::1]:8080/  "),
    ("waitlists", "source", "https://bücher.example/"),
    ("newsletters", "name", 5),
    ("waitlists", "fields", {"geo": 5, "platform": None, "other": [1, {"x": True}]}),
    ("email", "email_format", ""),
    ("newsletters", "format", "T"),
]

# Values the core refuses, which the document refuses too (so the fuzzer may send them as invalid).
REFUSED = [
    ("fxa", "fxa_id", "x" * 51),
    ("fxa", "fxa_id", True),
    ("fxa", "fxa_id", ["1337"]),
    ("email", "first_name", "a\x00b"),
    ("newsletters", "lang", "e"),
    ("email", "double_opt_in", 2),
    ("email", "double_opt_in", "maybe"),
    ("email", "double_opt_in", "yess"),
    ("email", "double_opt_in", None),
    ("email", "double_opt_in", 0.5),
    ("email", "basket_token", "not-a-uuid"),
    ("email", "basket_token", "g8fadcc5-ce2b-2f6f-a0cd-faaa313ba470"),
    ("email", "basket_token", 5),
    ("amo", "last_login", "12/05/2020"),
    ("amo", "last_login", 20201205),
    ("amo", "last_login", "2020-1-5"),
    ("newsletters", "source", "example.com/path"),
    ("newsletters", "source", "http://"),
    ("newsletters", "source", "http://exa mple.com"),
    ("newsletters", "source", 5),
    ("newsletters", "name", ""),
    ("newsletters", "name", None),
    ("waitlists", "fields", None),
    ("waitlists", "fields", ["geo"]),
    ("email", "email_format", "h"),
    ("email", "email_format", None),
    ("newsletters", "format", "N"),
]


def _cases(values: list[tuple[str, str, Any]]) -> list[Any]:
    return [
        pytest.param(operation, where, key, value, id=f"{operation} {where}.{key}={value!r}")
        for (where, key, value), operation in itertools.product(values, OPERATIONS)
        # PUT and PATCH identify the contact by the path: their own `email_id` rules are pinned below.
        if not (key == "email_id" and operation != "POST")
    ]


@pytest.mark.parametrize(("operation", "where", "key", "value"), _cases(ACCEPTED))
def test_a_value_the_core_accepts_is_documented_as_valid(
    operation: str, where: str, key: str, value: Any
) -> None:
    component, parse, base = OPERATIONS[operation]
    body = _body_with(base, where, key, value)
    assert _core_accepts(parse, body)
    assert _validator(component).is_valid(body), body


@pytest.mark.parametrize(("operation", "where", "key", "value"), _cases(REFUSED))
def test_a_value_the_core_refuses_is_documented_as_invalid(
    operation: str, where: str, key: str, value: Any
) -> None:
    component, parse, base = OPERATIONS[operation]
    body = _body_with(base, where, key, value)
    assert not _core_accepts(parse, body)
    assert not _validator(component).is_valid(body), body


@pytest.mark.parametrize(
    ("operation", "email_id", "accepted"),
    [
        ("PUT", EMAIL_ID.replace("-", "").upper(), True),
        ("PUT", f"urn:uuid:{EMAIL_ID}", True),
        ("PUT", None, False),
        ("PUT", "8a3c5b7e", False),
        ("PATCH", UUID1, True),
        ("PATCH", None, True),  # ignored
        ("PATCH", 17, False),
    ],
)
def test_email_id_is_documented_as_the_core_reads_it(
    operation: str, email_id: Any, accepted: bool
) -> None:
    component, parse, base = OPERATIONS[operation]
    body = _body_with(base, "email", "email_id", email_id)
    assert _core_accepts(parse, body) is accepted
    assert _validator(component).is_valid(body) is accepted


@pytest.mark.parametrize("key", ["vpn_waitlist", "relay_waitlist"])
def test_legacy_waitlists_may_be_null_in_a_patch(key: str) -> None:
    body = {key: None}
    assert _core_accepts(parse_contact_patch, body)
    assert _validator("ContactPatchSchema").is_valid(body)


def _spellings(word: str) -> list[str]:
    """Every upper/lower-case spelling of `word`."""
    return [
        "".join(letters) for letters in itertools.product(*({c.lower(), c.upper()} for c in word))
    ]


def test_the_documented_boolean_words_are_exactly_the_core_s() -> None:
    """Every spelling of every word, with and without surrounding whitespace, and near misses."""
    validator = _validator("MozillaFoundationInSchema")
    for word in (*TRUE_WORDS, *FALSE_WORDS):
        assert fields.boolean(word) is (word in TRUE_WORDS)
    candidates = [
        f"{before}{spelling}{after}"
        for word in (*TRUE_WORDS, *FALSE_WORDS, "tru", "yess", "of", "2", "nope", "truee", "")
        for spelling in _spellings(word)
        for before, after in (("", ""), (" ", "\t"), ("\u3000\x85", "\u2029"), ("\x00", ""))
    ]
    for candidate in candidates:
        try:
            fields.boolean(candidate)
            accepted = True
        except fields.InvalidValue:
            accepted = False
        documented = validator.is_valid({"mofo_relevant": candidate})
        assert documented is accepted, repr(candidate)


def test_documented_whitespace_is_what_python_strips() -> None:
    """The whitespace class of the patterns is exactly `str.isspace()` (what `str.strip()` removes)."""
    validator = jsonschema_rs.Draft202012Validator(
        {"type": "string", "pattern": f"^[{WHITESPACE}]$"},
        pattern_options=jsonschema_rs.FancyRegexOptions(),
    )
    for code_point in range(0x3001):  # no whitespace lies above U+3000
        character = chr(code_point)
        assert validator.is_valid(character) is character.isspace(), hex(code_point)


@pytest.mark.parametrize(
    ("component", "table", "extra"),
    [
        ("EmailInSchema", EMAIL_FIELDS, {"email_id"}),
        ("EmailPutSchema", EMAIL_FIELDS, {"email_id"}),
        ("EmailPatchSchema", EMAIL_FIELDS, {"email_id"}),
        ("AddOnsInSchema", AMO_FIELDS, set()),
        ("FirefoxAccountsInSchema", FXA_FIELDS, set()),
        ("MozillaFoundationInSchema", MOFO_FIELDS, set()),
        ("NewsletterInSchema", NEWSLETTER_FIELDS, set()),
        ("WaitlistInSchema", WAITLIST_FIELDS, set()),
    ],
)
def test_every_field_the_core_reads_is_documented(
    component: str, table: tuple[fields.Field, ...], extra: set[str]
) -> None:
    documented = set(_document()["components"]["schemas"][component]["properties"])
    assert documented == {field.name for field in table} | extra


@pytest.mark.parametrize("parse", [_post, parse_contact_patch], ids=["post", "patch"])
def test_a_relay_newsletter_beside_a_waitlist_that_is_not_an_object_is_a_422(
    parse: Callable[[dict[str, Any]], Any],
) -> None:
    body = {
        "email": {"primary_email": "a@example.com"},
        "newsletters": [{"name": "relay-waitlist"}],
        "waitlists": [5],
    }
    with pytest.raises(ValidationFailedError):
        parse(body)
