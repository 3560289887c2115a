"""The JSON bodies of the API, in the exact key order of CTMS v3.3 (docs/contract.md §5.8), and how they are encoded.

Each body is a msgspec Struct whose field order is the wire order; msgspec encodes it straight to bytes. A
contact's parts are the domain structs themselves (declared in wire order), so no field is listed here.
Timestamps are rendered as `datetime.isoformat()` in UTC (`2020-12-05T19:21:50.908000+00:00`, no `Z`,
microseconds only when non-zero) because msgspec would write `Z`; that is the only conversion a contact
needs. Dates render as `YYYY-MM-DD` and UUIDs lower-case, msgspec's defaults.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar.params import KwargDefinition
from litestar.response import Response
from litestar.response.base import ASGIResponse
from msgspec.structs import replace

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


class VpnWaitlistSchema(msgspec.Struct, frozen=True):
    """Computed from the subscribed `vpn` waitlist (docs/contract.md §6.4)."""

    geo: str | None
    platform: str | None


class RelayWaitlistSchema(msgspec.Struct, frozen=True):
    """Computed from the first subscribed `relay*` waitlist with a `geo` (docs/contract.md §6.4)."""

    geo: str | None


class CTMSResponse(msgspec.Struct, frozen=True):
    """A contact: the three satellites are always present (defaults when not stored). The domain structs
    are encoded as they are, their timestamps replaced by their text (see `timestamp`)."""

    amo: Annotated[Amo, KwargDefinition(schema_component_key="AddOnsSchema")]
    email: Annotated[Email, KwargDefinition(schema_component_key="EmailSchema")]
    fxa: Fxa
    mofo: Mofo
    newsletters: list[
        Annotated[Newsletter, KwargDefinition(schema_component_key="NewsletterSchema")]
    ]
    waitlists: list[Annotated[Waitlist, KwargDefinition(schema_component_key="WaitlistSchema")]]
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

_NO_AMO = Amo()
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


Stamped = TypeVar("Stamped", Email, Amo, Newsletter, Waitlist)


def _stamped(struct: Stamped) -> Stamped:
    """`struct` with its timestamps as text, ready to encode (msgspec does not check the types here)."""
    return replace(
        struct,
        create_timestamp=timestamp(struct.create_timestamp),
        update_timestamp=timestamp(struct.update_timestamp),
    )


def _contact_parts(contact: Contact) -> tuple[Any, ...]:
    vpn = vpn_waitlist_of(contact)
    relay = relay_waitlist_of(contact)
    return (
        _NO_AMO if contact.amo is None else _stamped(contact.amo),
        _stamped(contact.email),
        contact.fxa or _NO_FXA,
        contact.mofo or _NO_MOFO,
        [_stamped(item) for item in contact.newsletters],
        [_stamped(item) for item in contact.waitlists],
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
