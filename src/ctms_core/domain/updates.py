"""`GET /updates`: query rules and the keyset cursor (docs/contract.md §2.6, §7).

Pages are ordered by `(update_timestamp, email_id)` and a page starts strictly after the cursor's pair, so
paging never repeats a contact and always ends, however many contacts share one timestamp. The cursor keeps
the v3.3 format — URL-safe base64 of `"<email_id>,<timestamp>"` — so cursors handed out by v3.3 still work.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ctms_core.domain import fields as f
from ctms_core.domain.contact import Contact
from ctms_core.domain.errors import FieldError, ValidationFailedError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    email_id: uuid.UUID
    update_timestamp: datetime

    def encode(self) -> str:
        # str(datetime) is the v3.3 form: "2020-01-22 15:24:00+00:00".
        text = f"{self.email_id},{self.update_timestamp}"
        return base64.urlsafe_b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """Lenient like v3.3: either base64 alphabet, padding optional. Raises ValueError."""
        padded = value.strip() + "=" * (-len(value.strip()) % 4)
        try:
            text = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            email_id_text, _, timestamp_text = text.decode("utf-8").partition(",")
            return cls(uuid.UUID(email_id_text), parse_timestamp(timestamp_text))
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ValueError(str(error)) from error


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (a space or `T` between date and time, `Z` or an offset) or unix seconds; naive = UTC."""
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    try:
        parsed = datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(text)
    except OverflowError as error:
        raise ValueError("timestamp out of range") from error
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:  # an offset at the edge of the calendar (0001-01-01T00:00+00:01) does not fit in UTC
        return parsed.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("timestamp out of range") from error


@dataclass(frozen=True, slots=True)
class UpdatesQuery:
    start: datetime
    end: datetime | None
    limit: int
    after: Cursor | None
    mofo_relevant: bool | None


@dataclass(frozen=True, slots=True)
class UpdatesPage:
    """One page plus what the client needs to ask for the next one (None on the last page)."""

    start: datetime
    end: datetime
    limit: int
    mofo_relevant: bool | None
    items: tuple[Contact, ...]
    after: str | None


def parse_updates_query(params: Mapping[str, str]) -> UpdatesQuery:
    """Validate the query string of `GET /updates`; every problem is a 422 located at `["query", name]`.

    Rules: `start` required (ISO 8601 or unix seconds); `end` optional (empty = now); `limit` 1..1000
    (empty = 100; 0 is refused, docs/contract.md §7.1); `after` a cursor; `mofo_relevant` a boolean word or empty.
    """
    errors: list[FieldError] = []

    def timestamp(name: str, *, required: bool) -> datetime | None:
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                errors.append(FieldError(("query", name), "field required", "value_error.missing"))
            return None
        try:
            return parse_timestamp(raw)
        except ValueError:
            errors.append(
                FieldError(("query", name), "invalid datetime format", "value_error.datetime")
            )
            return None

    start = timestamp("start", required=True)
    end = timestamp("end", required=False)

    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit", "")
    if raw_limit != "":
        try:
            limit = int(raw_limit)
        except ValueError:
            errors.append(
                FieldError(("query", "limit"), "value is not a valid integer", "type_error.integer")
            )
        else:
            if limit <= 0:
                errors.append(
                    FieldError(
                        ("query", "limit"), '"limit" should be greater than 0', "value_error"
                    )
                )
            elif limit > MAX_LIMIT:
                errors.append(
                    FieldError(
                        ("query", "limit"),
                        f'"limit" should be less than or equal to {MAX_LIMIT}',
                        "value_error",
                    )
                )

    after: Cursor | None = None
    raw_after = params.get("after", "")
    if raw_after != "":
        try:
            after = Cursor.decode(raw_after)
        except ValueError:
            errors.append(
                FieldError(
                    ("query", "after"),
                    "'after' param validation error when decoding value.",
                    "value_error",
                )
            )

    mofo_relevant: bool | None = None
    raw_mofo = params.get("mofo_relevant", "")
    if raw_mofo != "":
        try:
            mofo_relevant = f.boolean(raw_mofo)
        except f.InvalidValue as invalid:
            errors.append(FieldError(("query", "mofo_relevant"), invalid.msg, invalid.type))

    if errors:
        raise ValidationFailedError(errors)
    assert start is not None
    return UpdatesQuery(start=start, end=end, limit=limit, after=after, mofo_relevant=mofo_relevant)
