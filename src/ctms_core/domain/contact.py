"""The contact aggregate: an e-mail identity with its optional satellites and subscriptions.

Field order in each struct is the order of the v3.3 JSON output (docs/contract.md §5.8), so adapters can render a contact
without reordering. Structs are frozen: a use case builds the next state with `msgspec.structs.replace`.

Sizes, defaults and coercions of every input field live in the `*_FIELDS` tables next to each struct; they
are the column sizes of docs/contract.md §1 so an oversized value is rejected before it reaches a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TypeVar

import msgspec

from ctms_core.domain import fields as f

# --- stored state -----------------------------------------------------------------------------------------


class Email(msgspec.Struct, frozen=True, kw_only=True):
    primary_email: str
    basket_token: str | None = None
    double_opt_in: bool = False
    sfdc_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    mailing_country: str | None = None
    email_format: str = "H"
    email_lang: str | None = "en"
    has_opted_out_of_email: bool = False
    unsubscribe_reason: str | None = None
    email_id: uuid.UUID
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Amo(msgspec.Struct, frozen=True, kw_only=True):
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
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Fxa(msgspec.Struct, frozen=True, kw_only=True):
    fxa_id: str | None = None
    primary_email: str | None = None
    created_date: str | None = None
    lang: str | None = None
    first_service: str | None = None
    account_deleted: bool = False


class Mofo(msgspec.Struct, frozen=True, kw_only=True):
    mofo_email_id: str | None = None
    mofo_contact_id: str | None = None
    mofo_relevant: bool = False


class Newsletter(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    subscribed: bool = True
    format: str = "H"
    lang: str | None = "en"
    source: str | None = None
    unsub_reason: str | None = None
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Waitlist(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source: str | None = None
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    subscribed: bool = True
    unsub_reason: str | None = None
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Contact(msgspec.Struct, frozen=True, kw_only=True):
    """A contact as stored. `amo`/`fxa`/`mofo` are None when no row exists ("default objects are not
    stored", docs/contract.md §5.2); `newsletters` and `waitlists` are sorted by name in code-point order (docs/contract.md §5.8).
    """

    email: Email
    amo: Amo | None = None
    fxa: Fxa | None = None
    mofo: Mofo | None = None
    newsletters: tuple[Newsletter, ...] = ()
    waitlists: tuple[Waitlist, ...] = ()

    @property
    def email_id(self) -> uuid.UUID:
        return self.email.email_id


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """The identifiers of one contact (`GET /identities`, `DELETE` responses)."""

    email_id: uuid.UUID
    primary_email: str
    basket_token: str | None
    sfdc_id: str | None
    mofo_contact_id: str | None
    mofo_email_id: str | None
    amo_user_id: str | None
    fxa_id: str | None
    fxa_primary_email: str | None


# --- input rules (docs/contract.md §5.2) ------------------------------------------------------------------

EMAIL_FIELDS: tuple[f.Field, ...] = (
    f.Field("primary_email", f.email_address(255), nullable=False, required=True),
    f.Field("basket_token", f.uuid_text),
    f.Field("double_opt_in", f.boolean, nullable=False, default=False),
    f.Field("sfdc_id", f.text(255)),
    f.Field("first_name", f.text(255)),
    f.Field("last_name", f.text(255)),
    f.Field("mailing_country", f.text(255)),
    f.Field("email_format", f.choice("H", "T", "N", ""), nullable=False, default="H"),
    f.Field("email_lang", f.text(5), default="en"),
    f.Field("has_opted_out_of_email", f.boolean, nullable=False, default=False),
    f.Field("unsubscribe_reason", f.text()),
)

AMO_FIELDS: tuple[f.Field, ...] = (
    f.Field("add_on_ids", f.text(500)),
    f.Field("display_name", f.text(255)),
    f.Field("email_opt_in", f.boolean, nullable=False, default=False),
    f.Field("language", f.text(5)),
    f.Field("last_login", f.iso_date),
    f.Field("location", f.text(255)),
    f.Field("profile_url", f.text(40)),
    f.Field("user", f.boolean, nullable=False, default=False),
    f.Field("user_id", f.text(40)),
    f.Field("username", f.text(100)),
)

FXA_FIELDS: tuple[f.Field, ...] = (
    f.Field("fxa_id", f.text(50)),
    f.Field("primary_email", f.text(255)),
    f.Field("created_date", f.text(50)),
    f.Field("lang", f.text(255)),
    f.Field("first_service", f.text(50)),
    f.Field("account_deleted", f.boolean, nullable=False, default=False),
)

MOFO_FIELDS: tuple[f.Field, ...] = (
    f.Field("mofo_email_id", f.text(255)),
    f.Field("mofo_contact_id", f.text(255)),
    f.Field("mofo_relevant", f.boolean, nullable=False, default=False),
)

NEWSLETTER_FIELDS: tuple[f.Field, ...] = (
    f.Field("name", f.text(255, min_length=1), nullable=False, required=True),
    f.Field("subscribed", f.boolean, nullable=False, default=True),
    f.Field("format", f.choice("H", "T"), nullable=False, default="H"),
    f.Field("lang", f.text(5, min_length=2), default="en"),
    f.Field("source", f.url),
    f.Field("unsub_reason", f.text()),
)

WAITLIST_FIELDS: tuple[f.Field, ...] = (
    f.Field("name", f.text(255, min_length=1), nullable=False, required=True),
    f.Field("source", f.url),
    f.Field("fields", f.json_object, nullable=False, default_factory=dict),
    f.Field("subscribed", f.boolean, nullable=False, default=True),
    f.Field("unsub_reason", f.text()),
)

GROUP_FIELDS: dict[str, tuple[f.Field, ...]] = {
    "amo": AMO_FIELDS,
    "fxa": FXA_FIELDS,
    "mofo": MOFO_FIELDS,
}
GROUP_TYPES: dict[str, type[Amo] | type[Fxa] | type[Mofo]] = {"amo": Amo, "fxa": Fxa, "mofo": Mofo}

# The data (non-timestamp) attributes of each struct: what equality, defaults and PATCH operate on.
EMAIL_DATA = tuple(field.name for field in EMAIL_FIELDS)
NEWSLETTER_DATA = tuple(field.name for field in NEWSLETTER_FIELDS)
WAITLIST_DATA = tuple(field.name for field in WAITLIST_FIELDS)
GROUP_DATA: dict[str, tuple[str, ...]] = {
    group: tuple(field.name for field in specs) for group, specs in GROUP_FIELDS.items()
}


def data_of(struct: msgspec.Struct, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in names}


def is_default_group(group: str, struct: Amo | Fxa | Mofo) -> bool:
    """True when every data field equals the schema default: such an object is not stored (docs/contract.md §5.2)."""
    return data_of(struct, GROUP_DATA[group]) == data_of(GROUP_TYPES[group](), GROUP_DATA[group])


Item = TypeVar("Item", Newsletter, Waitlist)


def sort_by_name(items: Iterable[Item]) -> tuple[Item, ...]:
    """Code-point order, whatever the database collation (docs/contract.md §5.8)."""
    return tuple(sorted(items, key=lambda item: item.name))


# --- read-side computed fields (docs/contract.md §6.4) -----------------------------------------------------


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def vpn_waitlist_of(contact: Contact) -> dict[str, str | None]:
    for waitlist in contact.waitlists:
        if waitlist.name == "vpn" and waitlist.subscribed:
            return {
                "geo": _text_or_none(waitlist.fields.get("geo")),
                "platform": _text_or_none(waitlist.fields.get("platform")),
            }
    return {"geo": None, "platform": None}


def relay_waitlist_of(contact: Contact) -> dict[str, str | None]:
    geo: str | None = None
    for waitlist in contact.waitlists:  # sorted by name: the first relay* waitlist with a geo wins
        if waitlist.subscribed and waitlist.name.startswith("relay"):
            geo = _text_or_none(waitlist.fields.get("geo"))
            if geo is not None:
                break
    return {"geo": geo}


def identity_of(contact: Contact) -> Identity:
    return Identity(
        email_id=contact.email.email_id,
        primary_email=contact.email.primary_email,
        basket_token=contact.email.basket_token,
        sfdc_id=contact.email.sfdc_id,
        mofo_contact_id=contact.mofo.mofo_contact_id if contact.mofo else None,
        mofo_email_id=contact.mofo.mofo_email_id if contact.mofo else None,
        amo_user_id=contact.amo.user_id if contact.amo else None,
        fxa_id=contact.fxa.fxa_id if contact.fxa else None,
        fxa_primary_email=contact.fxa.primary_email if contact.fxa else None,
    )


def unique_identifiers_of(contact: Contact) -> dict[str, str]:
    """The values of the unique fields a contact occupies (the database's unique constraints)."""
    values = {"email_id": str(contact.email.email_id), "primary_email": contact.email.primary_email}
    if contact.email.basket_token is not None:
        values["basket_token"] = contact.email.basket_token
    if contact.fxa is not None and contact.fxa.fxa_id is not None:
        values["fxa_id"] = contact.fxa.fxa_id
    if contact.mofo is not None and contact.mofo.mofo_email_id is not None:
        values["mofo_email_id"] = contact.mofo.mofo_email_id
    return values
