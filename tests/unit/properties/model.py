"""An independent model of what a contact's data becomes after POST, PUT and PATCH (docs/contract.md §4.2, §4.3, §4.4, §5.2).

A contact is a plain dict: `email` (the data fields), `amo`/`fxa`/`mofo` (dict, or None when no object is
stored), `newsletters`/`waitlists` (dict by name). No timestamps: the properties check those separately.
This module deliberately does not use the core's tables or helpers, so a bug there is not copied here.
"""

from __future__ import annotations

import copy
from typing import Any

EMAIL_DEFAULTS: dict[str, Any] = {
    "primary_email": None,
    "basket_token": None,
    "double_opt_in": False,
    "sfdc_id": None,
    "first_name": None,
    "last_name": None,
    "mailing_country": None,
    "email_format": "H",
    "email_lang": "en",
    "has_opted_out_of_email": False,
    "unsubscribe_reason": None,
}
GROUP_DEFAULTS: dict[str, dict[str, Any]] = {
    "amo": {
        "add_on_ids": None,
        "display_name": None,
        "email_opt_in": False,
        "language": None,
        "last_login": None,
        "location": None,
        "profile_url": None,
        "user": False,
        "user_id": None,
        "username": None,
    },
    "fxa": {
        "fxa_id": None,
        "primary_email": None,
        "created_date": None,
        "lang": None,
        "first_service": None,
        "account_deleted": False,
    },
    "mofo": {"mofo_email_id": None, "mofo_contact_id": None, "mofo_relevant": False},
}
NEWSLETTER_DEFAULTS: dict[str, Any] = {
    "subscribed": True,
    "format": "H",
    "lang": "en",
    "source": None,
    "unsub_reason": None,
}
WAITLIST_DEFAULTS: dict[str, Any] = {
    "source": None,
    "fields": {},
    "subscribed": True,
    "unsub_reason": None,
}

Model = dict[str, Any]


def _group(values: dict[str, Any] | None, group: str) -> dict[str, Any] | None:
    """A whole group object with defaults, or None when it is absent or all-default (not stored)."""
    if values is None:
        return None
    merged = {**GROUP_DEFAULTS[group], **values}
    return None if merged == GROUP_DEFAULTS[group] else merged


def _items(values: list[dict[str, Any]], defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["name"]: {**copy.deepcopy(defaults), **{k: v for k, v in item.items() if k != "name"}}
        for item in values
    }


def from_whole_body(body: dict[str, Any]) -> Model:
    """What a POST or PUT with `body` stores: every omitted field at its default."""
    email = {**EMAIL_DEFAULTS, **{k: v for k, v in body["email"].items() if k != "email_id"}}
    return {
        "email": email,
        **{group: _group(body.get(group), group) for group in GROUP_DEFAULTS},
        "newsletters": _items(body.get("newsletters", []), NEWSLETTER_DEFAULTS),
        "waitlists": _items(body.get("waitlists", []), WAITLIST_DEFAULTS),
    }


def apply_patch(model: Model, body: dict[str, Any]) -> Model:
    """docs/contract.md §4.4: only what the body mentions changes.

    * `email`: each given key replaces the stored value.
    * a group: `"DELETE"` removes it; an object updates the given keys of the stored object (or of an
      all-default one) and the group is removed when the result is all-default.
    * `newsletters`: `"UNSUBSCRIBE"` unsubscribes every newsletter; a list updates the named newsletters
      with the given keys only, and creates an unknown name (defaults + given keys) unless the item
      says `subscribed: false`. Newsletters not named are untouched.
    * `"newsletters": "UNSUBSCRIBE"` without a `waitlists` key also unsubscribes every waitlist (the
      legacy translation of docs/contract.md §6.1, §6.2, as v3.3 did).
    """
    result = copy.deepcopy(model)
    result["email"].update({k: v for k, v in body.get("email", {}).items() if k != "email_id"})
    for group in GROUP_DEFAULTS:
        if group not in body:
            continue
        change = body[group]
        if change == "DELETE":
            result[group] = None
        else:
            result[group] = _group({**(result[group] or {}), **change}, group)
    changes = body.get("newsletters")
    newsletters: dict[str, dict[str, Any]] = result["newsletters"]
    if changes == "UNSUBSCRIBE":
        for item in newsletters.values():
            item["subscribed"] = False
        if "waitlists" not in body:
            for waitlist in result["waitlists"].values():
                waitlist["subscribed"] = False
    elif changes is not None:
        for change in changes:
            values = {k: v for k, v in change.items() if k != "name"}
            if change["name"] in newsletters:
                newsletters[change["name"]].update(values)
            elif values.get("subscribed", True):
                newsletters[change["name"]] = {**NEWSLETTER_DEFAULTS, **values}
    return result
