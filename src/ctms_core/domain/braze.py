"""Contact → Braze user attributes object: the pure mapping described in docs/braze.md.

`map_contact` turns one contact into a `BrazeUser`: the attributes object `POST /users/track` takes, and
the per-attribute digests to remember once Braze accepted it. Braze bills every attribute it is sent
(a "data point"), changed or not, so the mapping takes the digests of what was last sent for the contact
and leaves out each attribute whose value did not change (`changed_attributes`, the one place that rule
lives). An erasure is the contact's `external_id`, for `POST /users/delete` (`deletion_of`).

What is sent (docs/braze.md has the full table):

* `external_id` = the contact's `email_id`, always (it names the user);
* `_update_existing_only`: false on the first send (create the profile), true afterwards, so a delta of
  a few attributes never creates a profile holding only those attributes;
* Braze profile fields `email`, `first_name`, `last_name`, `country`, `language`;
* `email_subscribe`, derived by `email_subscribe_of`;
* `subscription_groups`: the state of each subscription group a newsletter or waitlist of the contact
  maps to;
* nested custom attributes: `user_attributes_v1` (the e-mail record and FxA data, with the key names
  Basket writes), `amo_v1`, `mofo_v1` and `waitlists_v1`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

import msgspec

from ctms_core.domain.contact import Contact, Waitlist

__all__ = [
    "ATTRIBUTE_ORDER",
    "SUBSCRIPTION_GROUP_KINDS",
    "SUBSCRIPTION_GROUP_PREFIX",
    "BrazeConfiguration",
    "BrazeDeletion",
    "BrazeUser",
    "EmailSubscribe",
    "SubscriptionGroupKind",
    "attribute_digest",
    "braze_country",
    "braze_language",
    "changed_attributes",
    "deletion_of",
    "email_subscribe_of",
    "full_attributes",
    "map_contact",
]

EmailSubscribe = Literal["opted_in", "subscribed", "unsubscribed"]
# What a subscription group mapping maps: a newsletter name or a waitlist name.
SubscriptionGroupKind = Literal["newsletter", "waitlist"]
SUBSCRIPTION_GROUP_KINDS: Final[tuple[SubscriptionGroupKind, ...]] = ("newsletter", "waitlist")
SubscriptionState = Literal["subscribed", "unsubscribed"]
EMAIL_SUBSCRIBE_STATES: Final[tuple[EmailSubscribe, ...]] = (
    "opted_in",
    "subscribed",
    "unsubscribed",
)

# The flat form of a document keys each subscription group as `subscription_groups.<id>`, so a change of
# one group's state is sent without resending the others.
SUBSCRIPTION_GROUP_PREFIX: Final = "subscription_groups."

# Attribute order in the attributes object (after `external_id` and `_update_existing_only`).
ATTRIBUTE_ORDER: Final[tuple[str, ...]] = (
    "email",
    "first_name",
    "last_name",
    "country",
    "language",
    "email_subscribe",
    "user_attributes_v1",
    "amo_v1",
    "mofo_v1",
    "waitlists_v1",
)


class BrazeConfiguration(msgspec.Struct, frozen=True, kw_only=True):
    """Which subscription group each newsletter (and waitlist) name stands for in Braze.

    Names without a group are not sent as subscription groups (the waitlists still travel in
    `waitlists_v1`). Several names may share a group: the group is subscribed when any of them is.
    """

    newsletter_groups: Mapping[str, str] = msgspec.field(default_factory=dict)
    waitlist_groups: Mapping[str, str] = msgspec.field(default_factory=dict)


class BrazeUser(msgspec.Struct, frozen=True, kw_only=True):
    """One contact for `POST /users/track`.

    `attributes` is the attributes object to send, in a stable order. `digests` are the per-attribute
    digests of the contact's complete current document: what the caller stores once Braze accepted the
    object, and passes back as `previous_digests` next time. `unmapped_names` are the contact's newsletter
    and waitlist names that have no subscription group (a log fact).
    """

    email_id: uuid.UUID
    attributes: dict[str, Any]
    digests: dict[str, str]
    unmapped_names: tuple[str, ...] = ()

    @property
    def external_id(self) -> str:
        return str(self.email_id)

    @property
    def has_changes(self) -> bool:
        """False when every attribute equals what Braze was last sent: nothing needs to go out."""
        return any(key not in _CONTROL_KEYS for key in self.attributes)


class BrazeDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """An erased contact: the Braze user to remove with `POST /users/delete`."""

    email_id: uuid.UUID

    @property
    def external_id(self) -> str:
        return str(self.email_id)


_CONTROL_KEYS: Final = frozenset({"external_id", "_update_existing_only"})


# --- derived values ---------------------------------------------------------------------------------------


def email_subscribe_of(contact: Contact) -> EmailSubscribe:
    """Braze's global e-mail subscription state of a contact, first rule that applies:

    1. `has_opted_out_of_email` → `unsubscribed`;
    2. the contact has newsletters or waitlists and is subscribed to none of them (it left everything
       it had joined) → `unsubscribed`;
    3. `double_opt_in` → `opted_in`;
    4. otherwise → `subscribed`.
    """
    if contact.email.has_opted_out_of_email:
        return "unsubscribed"
    memberships = [n.subscribed for n in contact.newsletters] + [
        w.subscribed for w in contact.waitlists
    ]
    if memberships and not any(memberships):
        return "unsubscribed"
    if contact.email.double_opt_in:
        return "opted_in"
    return "subscribed"


def braze_country(mailing_country: str | None) -> str | None:
    """Braze's `country` takes an ISO 3166-1 alpha-2 code: two letters, upper-cased; anything else is
    null (the raw value still travels as `user_attributes_v1.mailing_country`)."""
    if mailing_country is None:
        return None
    code = mailing_country.strip()
    if len(code) == 2 and code.isascii() and code.isalpha():
        return code.upper()
    return None


def braze_language(email_lang: str | None) -> str | None:
    """Braze's `language` takes an ISO 639-1 code: the two letters before any region (`en-US` → `en`),
    lower-cased; anything else is null (the raw value travels as `user_attributes_v1.email_lang`)."""
    if email_lang is None:
        return None
    code = email_lang.strip().replace("_", "-").split("-", 1)[0]
    if len(code) == 2 and code.isascii() and code.isalpha():
        return code.lower()
    return None


def _time(value: datetime | date | None) -> dict[str, str] | None:
    """A time inside a nested custom attribute is `{"$time": ISO 8601}`; datetimes in UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return {"$time": aware.isoformat()}
    return {"$time": value.isoformat()}


# --- the complete document --------------------------------------------------------------------------------


def _user_attributes(contact: Contact) -> list[dict[str, Any]]:
    """The e-mail record and FxA data, keyed as Basket keys its `user_attributes_v1` (an array of one
    object, as Basket writes it)."""
    email, fxa = contact.email, contact.fxa
    return [
        {
            "basket_token": email.basket_token,
            "created_at": _time(email.create_timestamp),
            "updated_at": _time(email.update_timestamp),
            "email_lang": email.email_lang,
            "mailing_country": email.mailing_country,
            "email_format": email.email_format,
            "double_opt_in": email.double_opt_in,
            "has_opted_out_of_email": email.has_opted_out_of_email,
            "unsub_reason": email.unsubscribe_reason,
            "sfdc_id": email.sfdc_id,
            "has_fxa": fxa is not None and fxa.fxa_id is not None,
            "fxa_id": fxa.fxa_id if fxa else None,
            "fxa_primary_email": fxa.primary_email if fxa else None,
            "fxa_created_at": fxa.created_date if fxa else None,
            "fxa_lang": fxa.lang if fxa else None,
            "fxa_first_service": fxa.first_service if fxa else None,
            "fxa_deleted": fxa.account_deleted if fxa else False,
        }
    ]


def _amo(contact: Contact) -> dict[str, Any] | None:
    amo = contact.amo
    if amo is None:
        return None
    return {
        "add_on_ids": amo.add_on_ids,
        "display_name": amo.display_name,
        "email_opt_in": amo.email_opt_in,
        "language": amo.language,
        "last_login": _time(amo.last_login),
        "location": amo.location,
        "profile_url": amo.profile_url,
        "user": amo.user,
        "user_id": amo.user_id,
        "username": amo.username,
        "created_at": _time(amo.create_timestamp),
        "updated_at": _time(amo.update_timestamp),
    }


def _mofo(contact: Contact) -> dict[str, Any] | None:
    mofo = contact.mofo
    if mofo is None:
        return None
    return {
        "mofo_email_id": mofo.mofo_email_id,
        "mofo_contact_id": mofo.mofo_contact_id,
        "mofo_relevant": mofo.mofo_relevant,
    }


def _waitlist(waitlist: Waitlist) -> dict[str, Any]:
    return {
        "name": waitlist.name,
        "source": waitlist.source,
        "subscribed": waitlist.subscribed,
        "unsub_reason": waitlist.unsub_reason,
        "fields": dict(sorted(waitlist.fields.items())),
        "created_at": _time(waitlist.create_timestamp),
        "updated_at": _time(waitlist.update_timestamp),
    }


def _group_states(
    contact: Contact, configuration: BrazeConfiguration
) -> tuple[dict[str, SubscriptionState], tuple[str, ...]]:
    """Subscription group id → state for the contact's mapped newsletters and waitlists (subscribed when
    any name mapped to the group is), and the names without a group."""
    subscribed: dict[str, bool] = {}
    unmapped: list[str] = []
    memberships: Iterable[tuple[Mapping[str, str], str, bool]] = (
        *((configuration.newsletter_groups, n.name, n.subscribed) for n in contact.newsletters),
        *((configuration.waitlist_groups, w.name, w.subscribed) for w in contact.waitlists),
    )
    for groups, name, is_subscribed in memberships:
        group_id = groups.get(name)
        if group_id is None:
            unmapped.append(name)
            continue
        subscribed[group_id] = subscribed.get(group_id, False) or is_subscribed
    states: dict[str, SubscriptionState] = {
        group_id: "subscribed" if subscribed[group_id] else "unsubscribed"
        for group_id in sorted(subscribed)
    }
    return states, tuple(sorted(set(unmapped)))


def full_attributes(
    contact: Contact, configuration: BrazeConfiguration
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Every attribute CTMS owns for the contact, in flat form (null when CTMS has no value; one
    `subscription_groups.<id>` key per mapped group), and the unmapped newsletter/waitlist names."""
    email = contact.email
    document: dict[str, Any] = {
        "email": email.primary_email,
        "first_name": email.first_name,
        "last_name": email.last_name,
        "country": braze_country(email.mailing_country),
        "language": braze_language(email.email_lang),
        "email_subscribe": email_subscribe_of(contact),
        "user_attributes_v1": _user_attributes(contact),
        "amo_v1": _amo(contact),
        "mofo_v1": _mofo(contact),
        # null rather than [] without waitlists: a new contact's empty list is not worth a data point.
        "waitlists_v1": [_waitlist(w) for w in sorted(contact.waitlists, key=lambda w: w.name)]
        or None,
    }
    states, unmapped = _group_states(contact, configuration)
    for group_id, state in states.items():
        document[SUBSCRIPTION_GROUP_PREFIX + group_id] = state
    return document, unmapped


# --- billable attributes only when they changed -----------------------------------------------------------


def attribute_digest(external_id: str, key: str, value: Any) -> str:
    """A digest of one attribute's value, keyed by the user and the attribute.

    Keyed so that equal values of different contacts do not share a digest: the stored digests hold no
    readable address or name and cannot be matched across contacts.
    """
    encoded = msgspec.json.encode([external_id, key, value], order="sorted")
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _vanished_value(key: str) -> Any:
    """What an attribute sent before and no longer in the document is sent as: a newsletter removed from
    the contact leaves its group `unsubscribed`; any other attribute is cleared with null."""
    return "unsubscribed" if key.startswith(SUBSCRIPTION_GROUP_PREFIX) else None


def changed_attributes(
    external_id: str, current: Mapping[str, Any], previous_digests: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The attributes to send, and the digests to store once Braze accepted them.

    An attribute is sent when its digest differs from the one stored for it. An attribute never sent
    counts as null (Braze's value on a new profile), so a new contact's nulls are not sent. An attribute
    sent before and now absent from `current` is sent as its vanished value (`_vanished_value`).
    """
    keys = [*current, *(key for key in previous_digests if key not in current)]
    changed: dict[str, Any] = {}
    digests: dict[str, str] = {}
    for key in keys:
        value = current[key] if key in current else _vanished_value(key)
        digest = attribute_digest(external_id, key, value)
        digests[key] = digest
        previous = previous_digests.get(key)
        if previous is None:  # never sent: Braze holds null
            if value is not None:
                changed[key] = value
        elif digest != previous:
            changed[key] = value
    return changed, digests


def _wire_object(external_id: str, first_send: bool, changed: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes object in Braze's shape: identifiers first, attributes in `ATTRIBUTE_ORDER`, then
    the changed subscription groups as `subscription_groups: [{subscription_group_id,
    subscription_state}]` sorted by id."""
    attributes: dict[str, Any] = {
        "external_id": external_id,
        "_update_existing_only": not first_send,
    }
    for key in ATTRIBUTE_ORDER:
        if key in changed:
            attributes[key] = changed[key]
    groups = sorted(
        (key.removeprefix(SUBSCRIPTION_GROUP_PREFIX), state)
        for key, state in changed.items()
        if key.startswith(SUBSCRIPTION_GROUP_PREFIX)
    )
    if groups:
        attributes["subscription_groups"] = [
            {"subscription_group_id": group_id, "subscription_state": state}
            for group_id, state in groups
        ]
    return attributes


def map_contact(
    contact: Contact,
    configuration: BrazeConfiguration,
    previous_digests: Mapping[str, str] | None = None,
) -> BrazeUser:
    """Convert one contact for `POST /users/track`. Total: never raises on stored contact data.

    `previous_digests` are the `digests` of the last `BrazeUser` Braze accepted for this contact, or None
    when it was never sent (or must be sent in full again, e.g. after a resync): then every non-null
    attribute is sent and the object may create the profile.
    """
    external_id = str(contact.email.email_id)
    document, unmapped = full_attributes(contact, configuration)
    changed, digests = changed_attributes(external_id, document, previous_digests or {})
    return BrazeUser(
        email_id=contact.email.email_id,
        attributes=_wire_object(external_id, previous_digests is None, changed),
        digests=digests,
        unmapped_names=unmapped,
    )


def deletion_of(contact: Contact) -> BrazeDeletion:
    """The erasure of `contact` in Braze: its user, named by `external_id` = `email_id`."""
    return BrazeDeletion(email_id=contact.email.email_id)
