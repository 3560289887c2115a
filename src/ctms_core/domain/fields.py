"""One declarative mechanism for validating and coercing JSON input.

Each contact field is declared once, on its struct, with a `Rule` (`Annotated[str | None, Text(40)]`, see
`ctms_core.domain.contact`); `input_fields` reads a struct's declarations into a tuple of `Field`s, and
`parse_object` applies them and collects *all* errors with their location, so a client learns about every
bad value of a body at once (docs/compatibility.md §1). Each rule also renders the JSON Schema of what it
accepts, for the API's documentation.

Coercion is deliberately lenient like CTMS v3.3 (docs/contract.md §5.5): numbers are accepted for strings
(`1337` → `"1337"`), booleans accept `true/false/1/0/yes/no/on/off/t/f/y/n` in any case. Sizes are the
database column sizes, so an oversized value is a 422 and never a database error (docs/contract.md §5.2).
Messages follow the wording v3.3 clients have seen (pydantic v1) where one exists.
"""

from __future__ import annotations

import re
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec

from ctms_core.domain.errors import FieldError, Location


class InvalidValue(Exception):
    def __init__(self, msg: str, type_: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.type = type_


Coercer = Callable[[Any], Any]

# PostgreSQL text and JSON cannot store U+0000: refuse it at the edge (422) instead of failing in the
# database (500).
_NUL_MESSAGE = "text may not contain the NUL character (U+0000)"

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Field:
    """An input key: how to coerce it, whether `null` is allowed, and its default when omitted."""

    name: str
    coerce: Coercer
    nullable: bool = True
    default: Any = None
    required: bool = False
    default_factory: Callable[[], Any] | None = None
    rule: Rule | None = None  # the declared rule `coerce` comes from (see `input_fields`)

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def text(max_length: int | None = None, *, min_length: int = 0) -> Coercer:
    """A string (numbers accepted and rendered as decimal text) of bounded length."""

    def coerce(value: Any) -> str:
        if isinstance(value, str):
            result = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            result = str(value)
        else:
            raise InvalidValue("str type expected", "type_error.str")
        if "\x00" in result:
            raise InvalidValue(_NUL_MESSAGE, "value_error.str.nul")
        if max_length is not None and len(result) > max_length:
            raise InvalidValue(
                f"ensure this value has at most {max_length} characters",
                "value_error.any_str.max_length",
            )
        if len(result) < min_length:
            raise InvalidValue(
                f"ensure this value has at least {min_length} characters",
                "value_error.any_str.min_length",
            )
        return result

    return coerce


_TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


def boolean(value: Any) -> bool:
    """`true/false`, `1/0` and the usual words, in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise InvalidValue("value could not be parsed to a boolean", "type_error.bool")


def parse_uuid(value: Any, *, version4: bool = False) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            raise InvalidValue("value is not a valid uuid", "type_error.uuid") from None
    else:
        raise InvalidValue("value is not a valid uuid", "type_error.uuid")
    if version4 and parsed.version != 4:
        raise InvalidValue("uuid version 4 expected", "value_error.uuid.version")
    return parsed


def any_uuid(value: Any) -> uuid.UUID:
    return parse_uuid(value)


def uuid4(value: Any) -> uuid.UUID:
    return parse_uuid(value, version4=True)


def uuid_text(value: Any) -> str:
    """A UUID of any version, stored as its canonical lower-case text (basket tokens)."""
    return str(parse_uuid(value))


def choice(*allowed: str) -> Coercer:
    def coerce(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        permitted = ", ".join(repr(option) for option in allowed)
        raise InvalidValue(
            f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum"
        )

    return coerce


def iso_date(value: Any) -> date:
    """`YYYY-MM-DD`; a full ISO datetime is accepted and keeps its date part."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                parsed = parse(value.strip())
            except ValueError:
                continue
            return parsed.date() if isinstance(parsed, datetime) else parsed
    raise InvalidValue("invalid date format, expected YYYY-MM-DD", "value_error.date")


_URL = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+\-.]+)://"
    r"(?:[^\s:@/]+(?::[^\s@/]*)?@)?"  # optional user info
    r"(?P<host>\[[0-9a-f:.]+\]|[^\s:/?#\[\]@]+)"
    r"(?::(?P<port>\d{1,5}))?"
    r"(?P<rest>[/?#]\S*)?$",
    re.IGNORECASE,
)


def url(value: Any) -> str:
    """An absolute URL like pydantic v1 `AnyUrl` (docs/contract.md §5.5); IDN hosts become punycode."""
    if not isinstance(value, str):
        raise InvalidValue("str type expected", "type_error.str")
    candidate = value.strip()
    if "\x00" in candidate:
        raise InvalidValue(_NUL_MESSAGE, "value_error.str.nul")
    if not candidate or len(candidate) > 65536:
        raise InvalidValue("invalid or missing URL scheme", "value_error.url.scheme")
    match = _URL.match(candidate)
    if match is None:
        if "://" not in candidate:
            raise InvalidValue("invalid or missing URL scheme", "value_error.url.scheme")
        raise InvalidValue("URL host invalid", "value_error.url.host")
    port = match.group("port")
    if port is not None and int(port) > 65535:
        raise InvalidValue("URL port invalid, port cannot exceed 65535", "value_error.url.port")
    host = match.group("host")
    if not host.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidValue("URL host invalid", "value_error.url.host") from None
        start, end = match.span("host")
        candidate = candidate[:start] + ascii_host + candidate[end:]
    return candidate


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue("value is not a valid dict", "type_error.dict")
    if _holds_nul(value):
        raise InvalidValue(_NUL_MESSAGE, "value_error.str.nul")
    return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def email_address(max_length: int) -> Coercer:
    """The primary e-mail rule of docs/contract.md §5.2: one `@`, both sides non-empty, no whitespace."""
    as_text = text(max_length)

    def coerce(value: Any) -> str:
        address: str = as_text(value)
        local, at, domain = address.partition("@")
        if not at or not local or not domain or "@" in domain:
            raise InvalidValue(
                "value is not a valid email address: it must have exactly one @ with text on both sides",
                "value_error.email",
            )
        if any(character.isspace() for character in address):
            raise InvalidValue(
                "value is not a valid email address: it must not contain whitespace",
                "value_error.email",
            )
        return address

    return coerce


def parse_object(
    raw: Any,
    fields: Sequence[Field],
    loc: Location,
    errors: list[FieldError],
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Validate `raw` against `fields`; unknown keys are ignored, errors are appended to `errors`.

    With `partial=False` omitted keys take their defaults; with `partial=True` (PATCH) only the keys present
    are returned, so "absent" and "null" stay different.
    """
    if not isinstance(raw, Mapping):
        errors.append(FieldError(loc, "value is not a valid dict", "type_error.dict"))
        return {}
    result: dict[str, Any] = {}
    for field in fields:
        value = raw.get(field.name, _MISSING)
        if value is _MISSING:
            if field.required and not partial:
                errors.append(
                    FieldError((*loc, field.name), "field required", "value_error.missing")
                )
            elif not partial:
                result[field.name] = field.default_value()
            continue
        if value is None:
            if field.nullable:
                result[field.name] = None
            else:
                errors.append(
                    FieldError(
                        (*loc, field.name),
                        "none is not an allowed value",
                        "type_error.none.not_allowed",
                    )
                )
            continue
        try:
            result[field.name] = field.coerce(value)
        except InvalidValue as invalid:
            errors.append(FieldError((*loc, field.name), invalid.msg, invalid.type))
    return result


def defaults_of(fields: Sequence[Field]) -> dict[str, Any]:
    return {field.name: field.default_value() for field in fields}


# --- declared rules ----------------------------------------------------------------------------------------
#
# A contact field is declared once, on its struct, with its rule: `<name>: Annotated[str | None,
# Text(40)] = None`. msgspec ignores the rule (stored contacts decode strictly by type); `input_fields`
# reads it to validate request bodies leniently; the HTTP documentation renders each rule's `json_schema`.
#
# The JSON Schemas describe exactly the values the coercer accepts, never fewer: a fuzzer sending a value
# the document calls invalid expects a 4xx. Where the exact set cannot be written as JSON Schema (UUID
# spellings, ISO dates, URLs), the schema is the tightest simple superset; the canonical form is its first
# arm. Patterns are ECMA-262 and Python alike: no inline flags, no `\s`/`\d` (they differ).

JsonSchema = dict[str, Any]

# Python's `str.isspace()`, which `str.strip()` removes and the coercers' checks use.
_ASCII_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f "
WHITESPACE = _ASCII_WHITESPACE + r"\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{WHITESPACE}]*"
NO_NUL_PATTERN = r"^[^\x00]*$"


class Rule:
    """How one input field is read: `coerce` turns a JSON value into the stored one or raises
    `InvalidValue`; `json_schema` lists the JSON Schemas of the accepted values (null excluded)."""

    description: str = ""
    max_length: int | None = None  # the longest text it stores, held to the column by a test

    def __init__(self, coerce: Coercer) -> None:
        self.coerce = coerce

    def json_schema(self) -> list[JsonSchema]:
        raise NotImplementedError


class Text(Rule):
    """A string of bounded length, or a number stored as its decimal text."""

    description = "Text; numbers are accepted as their decimal text"

    def __init__(
        self, max_length: int | None = None, *, min_length: int = 0, description: str = ""
    ) -> None:
        super().__init__(text(max_length, min_length=min_length))
        self.max_length, self.min_length = max_length, min_length
        self.description = description or self.description

    def json_schema(self) -> list[JsonSchema]:
        string: JsonSchema = {"type": "string", "pattern": NO_NUL_PATTERN}
        if self.min_length:
            string["minLength"] = self.min_length
        if self.max_length is not None:
            string["maxLength"] = self.max_length
        return [string, {"type": "number"}]  # a huge number may still be too long


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


TRUE_WORDS = ("true", "yes", "on", "t", "y", "1")
FALSE_WORDS = ("false", "off", "no", "f", "n", "0")
BOOLEAN_PATTERN = (
    f"^{_WS}(?:{'|'.join(_case_insensitive(w) for w in (*TRUE_WORDS, *FALSE_WORDS))}){_WS}$"
)


class Boolean(Rule):
    description = (
        "`true`/`false`, `1`/`0`, or one of the words "
        f"{', '.join(TRUE_WORDS)} / {', '.join(FALSE_WORDS)} in any case"
    )

    def __init__(self) -> None:
        super().__init__(boolean)

    def json_schema(self) -> list[JsonSchema]:
        return [
            {"type": "boolean"},
            {"type": "integer", "enum": [0, 1]},
            {"type": "string", "pattern": BOOLEAN_PATTERN},
        ]


class Choice(Rule):
    def __init__(self, *allowed: str) -> None:
        super().__init__(choice(*allowed))
        self.allowed = allowed
        self.max_length = max(len(option) for option in allowed)

    def json_schema(self) -> list[JsonSchema]:
        return [{"type": "string", "enum": list(self.allowed)}]


# Python's `uuid.UUID(text)` drops every `urn:` and `uuid:`, the outer braces and every hyphen, then reads 32
# characters as a base-16 integer (which allows surrounding whitespace, `+`, `0x`, `_` and any Unicode
# decimal digit). So: at least 32 characters, each one of those or non-ASCII.
UUID_SPELLING_PATTERN = f"^(?:[-0-9a-fA-F{{}}:_+xXurnid{_ASCII_WHITESPACE}]|[^\\x00-\\x7f])+$"
UUID_SPELLING: JsonSchema = {
    "type": "string",
    "minLength": 32,
    "pattern": UUID_SPELLING_PATTERN,
    "description": "Any other spelling Python's `uuid.UUID` reads: without hyphens, in braces, "
    "`urn:uuid:`-prefixed...",
}
UUID4_PATTERN = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)


class UuidText(Rule):
    """A UUID of any version, stored as its canonical lower-case text."""

    description = "A UUID"
    max_length = 36

    def __init__(self) -> None:
        super().__init__(uuid_text)

    def json_schema(self) -> list[JsonSchema]:
        return [{"type": "string", "format": "uuid"}, UUID_SPELLING]


# `iso_date`: Python 3.11's `date.fromisoformat` or `datetime.fromisoformat`, surrounding whitespace ignored.
# What may follow the date is not worth spelling out: `datetime.fromisoformat` takes any separator and skips
# stray characters in the time and zone, and `date.fromisoformat` ignores the last two of ten characters
# after a date without hyphens (`20201205xy`).
ISO_DATE_PATTERN = (
    f"^{_WS}[0-9]{{4}}(?:-?[0-9]{{2}}-?[0-9]{{2}}|-?W[0-9]{{2}}(?:-?[0-9])?)[\\s\\S]*$"
)


class IsoDate(Rule):
    description = "A date"

    def __init__(self) -> None:
        super().__init__(iso_date)

    def json_schema(self) -> list[JsonSchema]:
        return [
            {"type": "string", "format": "date"},
            {
                "type": "string",
                "pattern": ISO_DATE_PATTERN,
                "description": "Also `YYYYMMDD`, ISO week dates, and datetimes (the date part is kept)",
            },
        ]


# `url`: its absolute-URL expression, made case-insensitive by hand (Python's case-insensitive `[a-z]` also
# matches `İ ı ſ K`), without NUL, surrounding whitespace ignored; port digits may be any Unicode digit.
_NOT_URL_TEXT = f"{WHITESPACE}\\x00"
_SCHEME_LETTER = r"a-zA-Z\u0130\u0131\u017f\u212a"
URL_PATTERN = (
    f"^{_WS}[{_SCHEME_LETTER}][{_SCHEME_LETTER}0-9+\\-.]+://"
    f"(?:[^{_NOT_URL_TEXT}:@/]+(?::[^{_NOT_URL_TEXT}@/]*)?@)?"
    f"(?:\\[[0-9a-fA-F:.]+\\]|[^{_NOT_URL_TEXT}:/?#\\[\\]@]+)"
    r"(?::(?:[0-9]|[^\x00-\x7f]){1,5})?"
    f"(?:[/?#][^{_NOT_URL_TEXT}]*)?{_WS}$"
)


class Url(Rule):
    description = "An absolute URL"

    def __init__(self) -> None:
        super().__init__(url)

    def json_schema(self) -> list[JsonSchema]:
        return [{"type": "string", "pattern": URL_PATTERN}]


# One `@` with text on both sides, no whitespace (`str.isspace`) and no NUL (docs/contract.md §5.2).
_NOT_IN_ADDRESS = f"@\\x00{WHITESPACE}"
EMAIL_ADDRESS_PATTERN = f"^[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+$"


class EmailAddress(Rule):
    description = (
        "An e-mail address (one `@` with text on both sides, no whitespace), unique ignoring case"
    )

    def __init__(self, max_length: int) -> None:
        super().__init__(email_address(max_length))
        self.max_length = max_length

    def json_schema(self) -> list[JsonSchema]:
        return [{"type": "string", "maxLength": self.max_length, "pattern": EMAIL_ADDRESS_PATTERN}]


class JsonObject(Rule):
    """Any JSON object without NUL; what its keys may hold is another rule's business."""

    def __init__(self) -> None:
        super().__init__(json_object)

    def json_schema(self) -> list[JsonSchema]:
        return [{"type": "object"}]


def rule_of(annotation: Any) -> Rule | None:
    """The rule declared in `Annotated[type, rule]`, if any."""
    return next(
        (meta for meta in getattr(annotation, "__metadata__", ()) if isinstance(meta, Rule)), None
    )


def input_fields(struct: Any) -> tuple[Field, ...]:
    """The input fields of a struct, in declaration order: each attribute declared with a rule. `null` is
    allowed when the type admits None; an attribute without a default is required."""
    result: list[Field] = []
    for info in msgspec.structs.fields(struct):
        rule = rule_of(info.type)
        if rule is None:
            continue
        result.append(
            Field(
                info.name,
                rule.coerce,
                nullable=type(None) in typing.get_args(typing.get_args(info.type)[0]),
                default=None if info.default is msgspec.NODEFAULT else info.default,
                required=info.required,
                default_factory=None
                if info.default_factory is msgspec.NODEFAULT
                else info.default_factory,
                rule=rule,
            )
        )
    return tuple(result)
