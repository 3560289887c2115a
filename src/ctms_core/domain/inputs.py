"""Request bodies of the contact write operations, validated into typed inputs (docs/contract.md §5.1, §5.2, §5.7, §5.8, §5.9).

`parse_contact_input` reads a POST or PUT body, `parse_contact_patch` a PATCH body. Both take the decoded
JSON (any Python value), report every invalid value at once as `ValidationFailedError`, and never touch
storage. Locations start with `"body"`, as clients of v3.3 expect (`["body", "email", "primary_email"]`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ctms_core.domain import fields as f
from ctms_core.domain.contact import (
    EMAIL_FIELDS,
    GROUP_FIELDS,
    GROUP_TYPES,
    NEWSLETTER_FIELDS,
    WAITLIST_FIELDS,
    Amo,
    Fxa,
    Mofo,
    Newsletter,
    Waitlist,
    is_default_group,
)
from ctms_core.domain.errors import FieldError, Location, ValidationFailedError
from ctms_core.domain.waitlist_rules import SEEDED_RULES, WaitlistFieldRules

GROUPS = ("amo", "fxa", "mofo")

Delete = Literal["DELETE"]
Unsubscribe = Literal["UNSUBSCRIBE"]


class LegacyVpnWaitlist(msgspec.Struct, frozen=True):
    geo: str | None = None
    platform: str | None = None


class LegacyRelayWaitlist(msgspec.Struct, frozen=True):
    geo: str | None = None


LegacyVpnInput = LegacyVpnWaitlist | Delete | None | UnsetType
LegacyRelayInput = LegacyRelayWaitlist | Delete | None | UnsetType


class ContactInput(msgspec.Struct, frozen=True, kw_only=True):
    """A POST or PUT body: the whole contact, defaults applied, default satellite objects dropped."""

    email_id: uuid.UUID | None
    email: dict[str, Any]
    amo: Amo | None = None
    fxa: Fxa | None = None
    mofo: Mofo | None = None
    newsletters: tuple[Newsletter, ...] = ()
    waitlists: tuple[Waitlist, ...] = ()
    # Legacy waitlist keys (docs/contract.md §6); UNSET when the body does not carry the key at all.
    vpn_waitlist: LegacyVpnInput = UNSET
    relay_waitlist: LegacyRelayInput = UNSET


class ContactPatch(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH body: only the keys present, so "absent" and "set to the default" stay different."""

    email: dict[str, Any] = msgspec.field(default_factory=dict)
    groups: dict[str, dict[str, Any] | Delete] = msgspec.field(default_factory=dict)
    newsletters: tuple[dict[str, Any], ...] | Unsubscribe | UnsetType = UNSET
    waitlists: tuple[dict[str, Any], ...] | Unsubscribe | UnsetType = UNSET
    vpn_waitlist: LegacyVpnInput = UNSET
    relay_waitlist: LegacyRelayInput = UNSET


_BODY: Location = ("body",)
_MISSING: Any = object()

# The legacy `vpn_waitlist`/`relay_waitlist` objects keep v3.3's fixed shape (docs/contract.md §6); the
# `fields` of waitlist items follow the waitlist field rules (docs/waitlists.md).
_GEO_OR_PLATFORM = f.text(100)


def _parse_items(
    raw: Any,
    specs: Sequence[f.Field],
    loc: Location,
    errors: list[FieldError],
    *,
    partial: bool,
    kind: str,
    waitlist_rules: WaitlistFieldRules,
) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        errors.append(FieldError(loc, "value is not a valid list", "type_error.list"))
        return []
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, raw_item in enumerate(raw):
        item_loc = (*loc, index)
        item_errors: list[FieldError] = []
        item = f.parse_object(raw_item, specs, item_loc, item_errors, partial=partial)
        if partial and isinstance(raw_item, dict) and "name" not in raw_item:
            item_errors.append(
                FieldError((*item_loc, "name"), "field required", "value_error.missing")
            )
        if kind == "waitlist" and isinstance(raw_item, dict):
            # A PATCH item without `fields` keeps the stored ones; a POST/PUT item without them has `{}`.
            if "fields" in raw_item:
                waitlist_rules.validate(
                    raw_item.get("name"), raw_item["fields"], item_loc, item_errors
                )
            elif not partial:
                waitlist_rules.validate(raw_item.get("name"), {}, item_loc, item_errors)
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                item_errors.append(
                    FieldError(
                        (*item_loc, "name"),
                        f"duplicate {kind} name {name!r}: each name may appear once",
                        "value_error.duplicate",
                    )
                )
            seen.add(name)
        errors.extend(item_errors)
        if not item_errors:
            items.append(item)
    return items


def _parse_legacy(
    raw: Any, key: str, errors: list[FieldError], *, allow_delete: bool
) -> LegacyVpnInput | LegacyRelayInput:
    value = raw.get(key, _MISSING)
    if value is _MISSING:
        return UNSET
    if value is None:
        return None
    if value == "DELETE" and allow_delete:
        return "DELETE"
    names = ("geo", "platform") if key == "vpn_waitlist" else ("geo",)
    specs = tuple(f.Field(name, _GEO_OR_PLATFORM) for name in names)
    data = f.parse_object(value, specs, (*_BODY, key), errors)
    if key == "vpn_waitlist":
        return LegacyVpnWaitlist(geo=data.get("geo"), platform=data.get("platform"))
    return LegacyRelayWaitlist(geo=data.get("geo"))


def _check_relay_country(
    newsletters: Any, waitlists: Any, relay_waitlist: Any, errors: list[FieldError]
) -> None:
    """docs/contract.md §6.3: subscribing to a `relay-*` newsletter needs a country (no 500 for "DELETE")."""
    if not isinstance(newsletters, list | tuple):
        return
    wants_relay = any(
        item.get("subscribed", True) is not False and str(item.get("name", "")).startswith("relay-")
        for item in newsletters
        if isinstance(item, dict)
    )
    if not wants_relay:
        return
    if isinstance(relay_waitlist, LegacyRelayWaitlist):
        country = relay_waitlist.geo
    else:
        country = None
        if isinstance(waitlists, list | tuple):
            for item in waitlists:
                if not isinstance(item, dict):
                    continue  # reported by the waitlist's own validation
                fields_value = item.get("fields")
                if item.get("name") == "relay" and isinstance(fields_value, dict):
                    country = fields_value.get("geo")
    if not country:
        errors.append(FieldError(("body", "__root__"), "Relay country missing", "value_error"))


def _parse_email_id(
    raw_email: dict[str, Any], loc: Location, errors: list[FieldError], required: bool
) -> uuid.UUID | None:
    raw_id = raw_email.get("email_id")
    if raw_id is None:
        if not required:
            return None
        if "email_id" in raw_email:
            errors.append(
                FieldError(loc, "none is not an allowed value", "type_error.none.not_allowed")
            )
        else:
            errors.append(FieldError(loc, "field required", "value_error.missing"))
        return None
    try:
        return f.uuid4(raw_id)
    except f.InvalidValue as invalid:
        errors.append(FieldError(loc, invalid.msg, invalid.type))
        return None


def parse_contact_input(
    body: Any, *, require_email_id: bool, waitlist_rules: WaitlistFieldRules = SEEDED_RULES
) -> ContactInput:
    """Validate a POST (`require_email_id=False`) or PUT (`True`) body.

    Rules: `email.primary_email` required; `email.email_id` optional for POST (null or absent → the server
    generates one), required for PUT; when given it must be a version-4 UUID (docs/contract.md §5.7). Omitted fields take
    their defaults; all-default `amo`/`fxa`/`mofo` objects are dropped. Newsletter and waitlist names must
    be unique within the body (docs/compatibility.md §2). Each waitlist item's `fields` is checked by `waitlist_rules`
    (docs/waitlists.md; the API passes the rules in force, others get the seeded ones).
    """
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailedError(
            [FieldError(_BODY, "value is not a valid dict", "type_error.dict")]
        )

    email_loc = (*_BODY, "email")
    raw_email = body.get("email", _MISSING)
    email: dict[str, Any] = {}
    email_id: uuid.UUID | None = None
    if raw_email is _MISSING or raw_email is None:
        errors.append(
            FieldError(email_loc, "field required", "value_error.missing")
            if raw_email is _MISSING
            else FieldError(
                email_loc, "none is not an allowed value", "type_error.none.not_allowed"
            )
        )
    else:
        email = f.parse_object(raw_email, EMAIL_FIELDS, email_loc, errors)
        if isinstance(raw_email, dict):
            email_id = _parse_email_id(
                raw_email, (*email_loc, "email_id"), errors, require_email_id
            )

    groups: dict[str, Any] = {}
    for group in GROUPS:
        raw_group = body.get(group)
        if raw_group is None:
            groups[group] = None
            continue
        data = f.parse_object(raw_group, GROUP_FIELDS[group], (*_BODY, group), errors)
        if len(data) == len(GROUP_FIELDS[group]):
            struct = GROUP_TYPES[group](**data)
            groups[group] = None if is_default_group(group, struct) else struct

    newsletters: list[dict[str, Any]] = []
    if "newsletters" in body:
        newsletters = _parse_items(
            body["newsletters"],
            NEWSLETTER_FIELDS,
            (*_BODY, "newsletters"),
            errors,
            partial=False,
            kind="newsletter",
            waitlist_rules=waitlist_rules,
        )
    waitlists: list[dict[str, Any]] = []
    if "waitlists" in body:
        waitlists = _parse_items(
            body["waitlists"],
            WAITLIST_FIELDS,
            (*_BODY, "waitlists"),
            errors,
            partial=False,
            kind="waitlist",
            waitlist_rules=waitlist_rules,
        )
    vpn = _parse_legacy(body, "vpn_waitlist", errors, allow_delete=False)
    relay = _parse_legacy(body, "relay_waitlist", errors, allow_delete=False)
    _check_relay_country(body.get("newsletters"), body.get("waitlists"), relay, errors)

    if errors:
        raise ValidationFailedError(errors)
    return ContactInput(
        email_id=email_id,
        email=email,
        amo=groups["amo"],
        fxa=groups["fxa"],
        mofo=groups["mofo"],
        newsletters=tuple(Newsletter(**item) for item in newsletters),
        waitlists=tuple(Waitlist(**item) for item in waitlists),
        vpn_waitlist=vpn,  # type: ignore[arg-type]
        relay_waitlist=relay,  # type: ignore[arg-type]
    )


def _parse_patch_email(raw_email: Any, errors: list[FieldError]) -> dict[str, Any]:
    """The `email` group of a PATCH body: only the keys it sets; `primary_email` never null."""
    email_loc = (*_BODY, "email")
    if raw_email is None:
        errors.append(
            FieldError(email_loc, "none is not an allowed value", "type_error.none.not_allowed")
        )
        return {}
    if isinstance(raw_email, dict) and raw_email.get("primary_email", "") is None:
        errors.append(
            FieldError(
                (*email_loc, "primary_email"), "primary_email may not be None", "assertion_error"
            )
        )
        raw_email = {k: v for k, v in raw_email.items() if k != "primary_email"}
    email = f.parse_object(raw_email, EMAIL_FIELDS, email_loc, errors, partial=True)
    if isinstance(raw_email, dict) and raw_email.get("email_id") is not None:
        try:
            email["email_id"] = f.any_uuid(raw_email["email_id"])
        except f.InvalidValue as invalid:
            errors.append(FieldError((*email_loc, "email_id"), invalid.msg, invalid.type))
    return email


def parse_contact_patch(
    body: Any, *, waitlist_rules: WaitlistFieldRules = SEEDED_RULES
) -> ContactPatch:
    """Validate a PATCH body (docs/contract.md §4.4).

    Rules: every key optional and only present keys count; `amo`/`fxa`/`mofo` may be `"DELETE"`,
    `newsletters`/`waitlists` may be `"UNSUBSCRIBE"`; an explicit `null` or any other string for a whole
    group is a 422 (docs/contract.md §4.4); `email.primary_email` may be omitted but never null; list items need a
    `name` and carry only the keys they set; waitlist items are validated even when they only update, their
    `fields` (when given) by `waitlist_rules` (docs/waitlists.md).
    """
    if not isinstance(body, dict):
        raise ValidationFailedError(
            [FieldError(_BODY, "value is not a valid dict", "type_error.dict")]
        )
    errors: list[FieldError] = []

    email = _parse_patch_email(body["email"], errors) if "email" in body else {}

    groups: dict[str, dict[str, Any] | Delete] = {}
    for group in GROUPS:
        if group not in body:
            continue
        raw_group = body[group]
        loc = (*_BODY, group)
        if raw_group == "DELETE":
            groups[group] = "DELETE"
        elif isinstance(raw_group, dict):
            groups[group] = f.parse_object(
                raw_group, GROUP_FIELDS[group], loc, errors, partial=True
            )
        elif raw_group is None:
            errors.append(
                FieldError(loc, "none is not an allowed value", "type_error.none.not_allowed")
            )
        else:
            errors.append(
                FieldError(loc, 'value must be an object or the string "DELETE"', "type_error.dict")
            )

    lists: dict[str, tuple[dict[str, Any], ...] | Unsubscribe | UnsetType] = {}
    for key, specs, kind in (
        ("newsletters", NEWSLETTER_FIELDS, "newsletter"),
        ("waitlists", WAITLIST_FIELDS, "waitlist"),
    ):
        lists[key] = UNSET
        if key not in body:
            continue
        raw_list = body[key]
        loc = (*_BODY, key)
        if raw_list == "UNSUBSCRIBE":
            lists[key] = "UNSUBSCRIBE"
        elif isinstance(raw_list, list):
            lists[key] = tuple(
                _parse_items(
                    raw_list,
                    specs,
                    loc,
                    errors,
                    partial=True,
                    kind=kind,
                    waitlist_rules=waitlist_rules,
                )
            )
        elif raw_list is None:
            errors.append(
                FieldError(loc, "none is not an allowed value", "type_error.none.not_allowed")
            )
        else:
            errors.append(
                FieldError(
                    loc, 'value must be a list or the string "UNSUBSCRIBE"', "type_error.list"
                )
            )

    vpn = _parse_legacy(body, "vpn_waitlist", errors, allow_delete=True)
    relay = _parse_legacy(body, "relay_waitlist", errors, allow_delete=True)
    _check_relay_country(body.get("newsletters"), body.get("waitlists"), relay, errors)

    if errors:
        raise ValidationFailedError(errors)
    return ContactPatch(
        email=email,
        groups=groups,
        newsletters=lists["newsletters"],
        waitlists=lists["waitlists"],
        vpn_waitlist=vpn,  # type: ignore[arg-type]
        relay_waitlist=relay,  # type: ignore[arg-type]
    )
