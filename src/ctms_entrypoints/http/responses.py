"""The JSON bodies of the API, in the exact key order of CTMS v3.3 (docs/contract.md §5.8), and how they are encoded.

Each body is a msgspec Struct whose field order is the wire order; msgspec encodes it straight to bytes.
Timestamps are rendered as `datetime.isoformat()` in UTC (`2020-12-05T19:21:50.908000+00:00`, no `Z`,
microseconds only when non-zero) because msgspec would write `Z`; that is the only conversion a contact
needs. Dates render as `YYYY-MM-DD` and UUIDs lower-case, msgspec's defaults.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar.params import KwargDefinition
from litestar.response import Response
from litestar.response.base import ASGIResponse

from ctms_core.domain.contact import (
    Amo,
    Contact,
    Email,
    Fxa,
    Mofo,
    Newsletter,
    Waitlist,
    relay_waitlist_of,
    vpn_waitlist_of,
)
from ctms_core.domain.updates import UpdatesPage

JSON_MEDIA_TYPE = "application/json"

# The annotation documents the rendered text as a date-time (msgspec ignores it).
_DATE_TIME = KwargDefinition(format="date-time")
Timestamp = Annotated[str | None, _DATE_TIME]


class EmailSchema(msgspec.Struct, frozen=True):
    primary_email: str
    basket_token: str | None
    double_opt_in: bool
    sfdc_id: str | None
    first_name: str | None
    last_name: str | None
    mailing_country: str | None
    email_format: str
    email_lang: str | None
    has_opted_out_of_email: bool
    unsubscribe_reason: str | None
    email_id: uuid.UUID
    create_timestamp: Timestamp
    update_timestamp: Timestamp


class AddOnsSchema(msgspec.Struct, frozen=True):
    add_on_ids: str | None = None
    display_name: str | None = None
    email_opt_in: bool = False
    language: str | None = None
    last_login: date | None = None
    location: str | None = None
    profile_url: str | None = None
    user: bool = False
    user_id: str | None = None
    username: str | None = None
    create_timestamp: Timestamp = None
    update_timestamp: Timestamp = None


class NewsletterSchema(msgspec.Struct, frozen=True):
    name: str
    subscribed: bool
    format: str
    lang: str | None
    source: str | None
    unsub_reason: str | None
    create_timestamp: Timestamp
    update_timestamp: Timestamp


class WaitlistSchema(msgspec.Struct, frozen=True):
    name: str
    source: str | None
    fields: dict[str, Any]
    subscribed: bool
    unsub_reason: str | None
    create_timestamp: Timestamp
    update_timestamp: Timestamp


class VpnWaitlistSchema(msgspec.Struct, frozen=True):
    """Computed from the subscribed `vpn` waitlist (docs/contract.md §6.4)."""

    geo: str | None
    platform: str | None


class RelayWaitlistSchema(msgspec.Struct, frozen=True):
    """Computed from the first subscribed `relay*` waitlist with a `geo` (docs/contract.md §6.4)."""

    geo: str | None


class CTMSResponse(msgspec.Struct, frozen=True):
    """A contact: the three satellites are always present (defaults when not stored)."""

    amo: AddOnsSchema
    email: EmailSchema
    fxa: Fxa
    mofo: Mofo
    newsletters: list[NewsletterSchema]
    waitlists: list[WaitlistSchema]
    vpn_waitlist: VpnWaitlistSchema
    relay_waitlist: RelayWaitlistSchema


class CTMSSingleResponse(CTMSResponse, frozen=True):
    """A contact, as returned by the single-contact operations."""

    status: Literal["ok"] = "ok"


class CTMSBulkResponse(msgspec.Struct, frozen=True):
    """One page of `GET /updates`; `after` and `next` are null on the last page."""

    start: Annotated[str, _DATE_TIME]
    end: Annotated[str, _DATE_TIME]
    limit: int
    after: str | None
    next: str | None
    items: list[CTMSResponse]


class TokenResponse(msgspec.Struct, frozen=True):
    access_token: str
    token_type: str
    expires_in: int


class DatabaseHealthReport(msgspec.Struct, frozen=True, omit_defaults=True):
    up: bool
    time_ms: int
    acoustic: dict[str, Any]
    #: Only when Braze is an enabled sync destination (`CTMS_SYNC_DESTINATIONS`).
    braze: dict[str, Any] | None = None


class HeartbeatResponse(msgspec.Struct, frozen=True):
    database: DatabaseHealthReport


class LbHeartbeatResponse(msgspec.Struct, frozen=True):
    status: str


class AcousticConfigurationResponse(msgspec.Struct, frozen=True):
    """`GET /acoustic_configuration` (docs/contract.md §10): fields by table name, newsletter slug → column."""

    sync_fields: dict[str, list[str]]
    newsletter_mappings: dict[str, str]


# --- rendering ------------------------------------------------------------------------------------------

_NO_AMO = AddOnsSchema()
_NO_FXA = Fxa()
_NO_MOFO = Mofo()


# A contact's items mostly share a few timestamps (one write stamps all it touches), and isoformat() is
# the most expensive step of rendering a contact: remember recent renderings. Equal instants render
# equally, since every timestamp is rendered in UTC.
@functools.lru_cache(maxsize=4096)
def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _email(email: Email) -> EmailSchema:
    return EmailSchema(
        email.primary_email,
        email.basket_token,
        email.double_opt_in,
        email.sfdc_id,
        email.first_name,
        email.last_name,
        email.mailing_country,
        email.email_format,
        email.email_lang,
        email.has_opted_out_of_email,
        email.unsubscribe_reason,
        email.email_id,
        timestamp(email.create_timestamp),
        timestamp(email.update_timestamp),
    )


def _amo(amo: Amo | None) -> AddOnsSchema:
    if amo is None:
        return _NO_AMO
    return AddOnsSchema(
        amo.add_on_ids,
        amo.display_name,
        amo.email_opt_in,
        amo.language,
        amo.last_login,
        amo.location,
        amo.profile_url,
        amo.user,
        amo.user_id,
        amo.username,
        timestamp(amo.create_timestamp),
        timestamp(amo.update_timestamp),
    )


def _newsletter(item: Newsletter) -> NewsletterSchema:
    return NewsletterSchema(
        item.name,
        item.subscribed,
        item.format,
        item.lang,
        item.source,
        item.unsub_reason,
        timestamp(item.create_timestamp),
        timestamp(item.update_timestamp),
    )


def _waitlist(item: Waitlist) -> WaitlistSchema:
    return WaitlistSchema(
        item.name,
        item.source,
        item.fields,
        item.subscribed,
        item.unsub_reason,
        timestamp(item.create_timestamp),
        timestamp(item.update_timestamp),
    )


def _contact_parts(contact: Contact) -> tuple[Any, ...]:
    vpn = vpn_waitlist_of(contact)
    relay = relay_waitlist_of(contact)
    return (
        _amo(contact.amo),
        _email(contact.email),
        contact.fxa or _NO_FXA,
        contact.mofo or _NO_MOFO,
        [_newsletter(item) for item in contact.newsletters],
        [_waitlist(item) for item in contact.waitlists],
        VpnWaitlistSchema(vpn["geo"], vpn["platform"]),
        RelayWaitlistSchema(relay["geo"]),
    )


def contact_body(contact: Contact) -> CTMSResponse:
    return CTMSResponse(*_contact_parts(contact))


def single_contact_body(contact: Contact) -> CTMSSingleResponse:
    return CTMSSingleResponse(*_contact_parts(contact))


def updates_body(page: UpdatesPage, server_prefix: str) -> CTMSBulkResponse:
    """The page, with a `next` link that repeats the query with `after` (docs/contract.md §7.3: URL-encoded,
    `mofo_relevant` kept)."""
    start, end = timestamp(page.start), timestamp(page.end)
    assert start is not None
    assert end is not None
    next_url = None
    if page.after is not None:
        query = [("start", start), ("end", end), ("limit", str(page.limit)), ("after", page.after)]
        if page.mofo_relevant is not None:
            query.append(("mofo_relevant", "true" if page.mofo_relevant else "false"))
        next_url = f"{server_prefix.rstrip('/')}/updates?{urlencode(query)}"
    return CTMSBulkResponse(
        start=start,
        end=end,
        limit=page.limit,
        after=page.after,
        next=next_url,
        items=[contact_body(contact) for contact in page.items],
    )


# --- encoding -------------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
JsonContent = msgspec.Struct | list[Any] | dict[str, Any]


def encode_json(body: JsonContent) -> bytes:
    return _encoder.encode(body)


def json_response(
    body: JsonContent, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> ASGIResponse:
    """A handler's JSON response. Handlers return the ASGI response itself, which spares Litestar's
    generic response processing on every request (a measurable share of the hot path)."""
    return raw_json_response(_encoder.encode(body), status_code=status_code, headers=headers)


# Seconds a 503 asks the caller to wait before retrying: the database timeouts are a few seconds.
SERVICE_UNAVAILABLE_RETRY_AFTER = "5"


def _with_retry_after(status_code: int, headers: dict[str, str] | None) -> dict[str, str] | None:
    """`headers`, plus `Retry-After` on a 503 without one (every 503 carries it: Basket's HTTP client
    only retries a 503 that does)."""
    if status_code != 503 or (headers and any(n.lower() == "retry-after" for n in headers)):
        return headers
    return {**(headers or {}), "Retry-After": SERVICE_UNAVAILABLE_RETRY_AFTER}


def raw_json_response(
    content: bytes, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> ASGIResponse:
    headers = _with_retry_after(status_code, headers)
    return ASGIResponse(
        body=content, status_code=status_code, media_type=JSON_MEDIA_TYPE, headers=headers
    )


def error_response(
    body: JsonContent, *, status_code: int, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """An exception handler's JSON response (Litestar expects a `Response` there)."""
    headers = _with_retry_after(status_code, headers)
    return Response(
        _encoder.encode(body), status_code=status_code, media_type=JSON_MEDIA_TYPE, headers=headers
    )
