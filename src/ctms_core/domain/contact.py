"""The contact aggregate: an e-mail identity with its optional satellites and subscriptions.

Field order in each struct is the order of the v3.3 JSON output (docs/contract.md §5.8), so adapters can render a contact
without reordering. Structs are frozen: a use case builds the next state with `msgspec.structs.replace`.

Each field is declared once, with its rule (`Annotated[str | None, Text(40)]`, see `fields`): the rule
validates request bodies, documents them, and its size is the column's (docs/contract.md §1, held by a test)
so an oversized value is rejected before it reaches a database. Attributes without a rule (ids,
timestamps) are not read from a body's group.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import msgspec

from ctms_core.domain import fields as f
from ctms_core.domain.fields import (
    Boolean,
    Choice,
    EmailAddress,
    IsoDate,
    JsonObject,
    Text,
    Url,
    UuidText,
    input_fields,
)

# --- stored state -----------------------------------------------------------------------------------------


class Email(msgspec.Struct, frozen=True, kw_only=True):
    primary_email: Annotated[str, EmailAddress(255)]
    basket_token: Annotated[str | None, UuidText()] = None
    double_opt_in: Annotated[bool, Boolean()] = False
    sfdc_id: Annotated[str | None, Text(255)] = None
    first_name: Annotated[str | None, Text(255)] = None
    last_name: Annotated[str | None, Text(255)] = None
    mailing_country: Annotated[str | None, Text(255)] = None
    email_format: Annotated[str, Choice("H", "T", "N", "")] = "H"
    email_lang: Annotated[str | None, Text(5)] = "en"
    has_opted_out_of_email: Annotated[bool, Boolean()] = False
    unsubscribe_reason: Annotated[str | None, Text()] = None
    email_id: (
        uuid.UUID
    )  # read by its own rules: optional in a POST, required in a PUT, any UUID in a PATCH
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Amo(msgspec.Struct, frozen=True, kw_only=True):
    add_on_ids: Annotated[str | None, Text(500)] = None
    display_name: Annotated[str | None, Text(255)] = None
    email_opt_in: Annotated[bool, Boolean()] = False
    language: Annotated[str | None, Text(5)] = None
    last_login: Annotated[date | None, IsoDate()] = None
    location: Annotated[str | None, Text(255)] = None
    profile_url: Annotated[str | None, Text(40)] = None
    user: Annotated[bool, Boolean()] = False
    user_id: Annotated[str | None, Text(40)] = None
    username: Annotated[str | None, Text(100)] = None
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Fxa(msgspec.Struct, frozen=True, kw_only=True):
    fxa_id: Annotated[str | None, Text(50)] = None
    primary_email: Annotated[str | None, Text(255)] = None
    created_date: Annotated[str | None, Text(50)] = None
    lang: Annotated[str | None, Text(255)] = None
    first_service: Annotated[str | None, Text(50)] = None
    account_deleted: Annotated[bool, Boolean()] = False


class Mofo(msgspec.Struct, frozen=True, kw_only=True):
    mofo_email_id: Annotated[str | None, Text(255)] = None
    mofo_contact_id: Annotated[str | None, Text(255)] = None
    mofo_relevant: Annotated[bool, Boolean()] = False


# A newsletter's or waitlist's name: each may appear once in a body's list.
ITEM_NAME = Text(
    255, min_length=1, description="Unique; numbers are accepted as their decimal text"
)


class Newsletter(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, ITEM_NAME]
    subscribed: Annotated[bool, Boolean()] = True
    format: Annotated[str, Choice("H", "T")] = "H"
    lang: Annotated[str | None, Text(5, min_length=2)] = "en"
    source: Annotated[str | None, Url()] = None
    unsub_reason: Annotated[str | None, Text()] = None
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None


class Waitlist(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, ITEM_NAME]
    source: Annotated[str | None, Url()] = None
    # Each key is checked by the waitlist field rules (docs/waitlists.md).
    fields: Annotated[dict[str, Any], JsonObject()] = msgspec.field(default_factory=dict)
    subscribed: Annotated[bool, Boolean()] = True
    unsub_reason: Annotated[str | None, Text()] = None
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


# --- input fields, derived from the declarations (docs/contract.md §5.2) ------------------------------------------------------------------

EMAIL_FIELDS = input_fields(Email)
AMO_FIELDS = input_fields(Amo)
FXA_FIELDS = input_fields(Fxa)
MOFO_FIELDS = input_fields(Mofo)
NEWSLETTER_FIELDS = input_fields(Newsletter)
WAITLIST_FIELDS = input_fields(Waitlist)

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
