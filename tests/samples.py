"""The sample contacts of the v3 test suite (docs/contract.md §5), as POST bodies.

Ids the reference abbreviates (the maximal contact's mofo ids) are completed with fixed values. Every
function returns a fresh dict, so a test may modify what it gets.
"""

from __future__ import annotations

import copy
from typing import Any

_MOST_MINIMAL: dict[str, Any] = {
    "email": {
        "email_id": "62d8d3c6-95f3-4ed6-b176-7f69acff22f6",
        "primary_email": "ctms-most-minimal-user@example.com",
    },
}

_MINIMAL: dict[str, Any] = {
    "email": {
        "email_id": "93db83d4-4119-4e0c-af87-a713786fa81d",
        "primary_email": "ctms-user@example.com",
        "basket_token": "142e20b6-1ef5-43d8-b5f4-597430e956d7",
        "sfdc_id": "001A000001aABcDEFG",
        "mailing_country": "us",
    },
    "newsletters": [
        {"name": "app-dev"},
        {"name": "maker-party"},
        {"name": "mozilla-foundation"},
        {"name": "mozilla-learning-network"},
    ],
}

_MAXIMAL: dict[str, Any] = {
    "email": {
        "email_id": "67e52c77-950f-4f28-accb-bb3ea1a2c51a",
        "primary_email": "mozilla-fan@example.com",
        "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
        "double_opt_in": True,
        "sfdc_id": "001A000001aMozFan",
        "first_name": "Fan",
        "last_name": "of Mozilla",
        "mailing_country": "ca",
        "email_format": "H",
        "email_lang": "fr",
        "has_opted_out_of_email": False,
        "unsubscribe_reason": "done with this mailing list",
    },
    "amo": {
        "add_on_ids": "fanfox,foxfan",
        "display_name": "#1 Mozilla Fan",
        "email_opt_in": True,
        "language": "fr,en",
        "last_login": "2020-01-27",
        "location": "The Inter",
        "profile_url": "firefox/user/14508209",
        "user": True,
        "user_id": "123",
        "username": "Mozilla1Fan",
    },
    "fxa": {
        "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
        "primary_email": "fxa-firefox-fan@example.com",
        "created_date": "2019-05-22T08:29:31.906094+00:00",
        "lang": "fr,fr-CA",
        "first_service": "monitor",
        "account_deleted": False,
    },
    "mofo": {
        "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
        "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
        "mofo_relevant": True,
    },
    "newsletters": [
        {
            "name": "ambassadors",
            "subscribed": False,
            "source": "https://www.mozilla.org/en-US/contribute/studentambassadors/",
            "unsub_reason": "Graduated, don't have time for FSA",
        },
        {
            "name": "common-voice",
            "format": "T",
            "lang": "fr",
            "source": "https://commonvoice.mozilla.org/fr",
        },
        {"name": "firefox-accounts-journey", "subscribed": False, "lang": "fr"},
        {"name": "firefox-os"},
        {"name": "hubs", "lang": "fr"},
        {"name": "mozilla-festival"},
        {"name": "mozilla-foundation", "lang": "fr"},
    ],
    "waitlists": [
        {
            "name": "a-software",
            "source": "https://a-software.mozilla.org/",
            "fields": {"geo": "fr"},
        },
        {"name": "relay", "fields": {"geo": "cn"}},
        {"name": "super-product", "fields": {"geo": "fr", "platform": "win64"}},
        {"name": "vpn", "fields": {"geo": "ca", "platform": "windows,android"}},
    ],
}

_EXAMPLE: dict[str, Any] = {
    "email": {
        "email_id": "332de237-cab7-4461-bcc3-48e68f42bd5c",
        "primary_email": "contact@example.com",
        "basket_token": "c4a7d759-bb52-457b-896b-90f1d3ef8433",
        "double_opt_in": True,
        "sfdc_id": "001A000023aABcDEFG",
        "first_name": "Jane",
        "last_name": "Doe",
        "mailing_country": "us",
        "email_format": "H",
        "email_lang": "en",
        "has_opted_out_of_email": False,
        "unsubscribe_reason": None,
    },
    "amo": {
        "add_on_ids": "add-on-1,add-on-2",
        "display_name": "Add-ons Author",
        "email_opt_in": False,
        "language": "en",
        "last_login": "2021-01-28",
        "location": "California",
        "profile_url": "firefox/user/98765",
        "user": True,
        "user_id": "98765",
        "username": "AddOnAuthor",
    },
    "fxa": {
        "fxa_id": "6eb6ed6ac3b64259968aa490c6c0b9df",
        "primary_email": "my-fxa-acct@example.com",
        "created_date": "2021-01-29T18:43:49.082375+00:00",
        "lang": "en,en-US",
        "first_service": "sync",
        "account_deleted": False,
    },
    "newsletters": [
        {
            "name": "firefox-welcome",
            "source": "https://www.mozilla.org/en-US/",
        },
        {
            "name": "mozilla-welcome",
            "source": "https://www.mozilla.org/en-US/",
        },
    ],
    "waitlists": [
        {
            "name": "example-product",
            "source": "https://www.example.com/product",
            "fields": {"geo": "fr", "platform": "win64"},
        },
        {"name": "relay", "fields": {"geo": "fr"}},
        {"name": "vpn", "fields": {"geo": "fr", "platform": "ios,mac"}},
    ],
}

_TO_ADD: dict[str, Any] = {
    "email": {
        "email_id": "d1da1c99-fe09-44db-9c68-78a75752574d",
        "primary_email": "ctms-user-to-be-created@example.com",
        "basket_token": "21aeb466-4003-4c2b-a27e-e6651c13d231",
        "sfdc_id": "002A000001aBAcDEFA",
        "first_name": "Ctms",
        "last_name": "Usertobecreated",
        "mailing_country": "us",
        "email_lang": "en",
    },
    "newsletters": [{"name": "firefox-welcome"}],
}

_SIMPLE_DEFAULT: dict[str, Any] = {
    "email": {
        "email_id": "4f98b303-8863-421f-95d3-847cd4d83c9f",
        "primary_email": "with-defaults@example.com",
        "basket_token": "df9f7086-4949-4b2d-8fcf-49167f8f783d",
    },
    "amo": {"display_name": None, "email_opt_in": False, "user": False},
}

_DEFAULT_NEWSLETTER: dict[str, Any] = {
    "email": {
        "email_id": "dd2bc52c-49e4-4df9-95a8-197d3a7794cd",
        "primary_email": "with-default-newsletter@example.com",
    },
    "newsletters": [],
}

_DEFAULT_WAITLIST: dict[str, Any] = {
    "email": {
        "email_id": "0A6ECCA3-D007-4BD4-B596-C09DA94F0FEF",
        "primary_email": "with-default-waitlist@example.com",
        "basket_token": "6D9A4E1B-52A6-4C8E-9D7B-31D3C7B5E0A2",
    },
    "waitlists": [],
}

SAMPLES: dict[str, dict[str, Any]] = {
    "most_minimal": _MOST_MINIMAL,
    "minimal": _MINIMAL,
    "maximal": _MAXIMAL,
    "example": _EXAMPLE,
    "to_add": _TO_ADD,
    "simple_default": _SIMPLE_DEFAULT,
    "default_newsletter": _DEFAULT_NEWSLETTER,
    "default_waitlist": _DEFAULT_WAITLIST,
}


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of one sample's POST body."""
    return copy.deepcopy(SAMPLES[name])


def sample_names() -> list[str]:
    return list(SAMPLES)
