"""One declarative mechanism for validating and coercing JSON input.

Every group of the contact contract (email, amo, fxa, mofo, newsletter and waitlist items) is described as a
tuple of `Field`s; `parse_object` applies them and collects *all* errors with their location, so a client
learns about every bad value of a body at once (docs/compatibility.md §1).

Coercion is deliberately lenient like CTMS v3.3 (docs/contract.md §5.5): numbers are accepted for strings
(`1337` → `"1337"`), booleans accept `true/false/1/0/yes/no/on/off/t/f/y/n` in any case. Sizes are the
database column sizes, so an oversized value is a 422 and never a database error (docs/contract.md §5.2).
Messages follow the wording v3.3 clients have seen (pydantic v1) where one exists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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
