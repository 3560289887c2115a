"""Hypothesis strategies for contact request bodies (valid ones: the properties are about behaviour).

Names are drawn from small pools so that generated PATCHes keep hitting the same newsletters, and never
end in `-waitlist` or start with `relay-`: those names trigger the legacy waitlist translation (docs/contract.md §6),
which these properties leave to the example-based tests.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from hypothesis import strategies as st

NEWSLETTER_NAMES = ("mozilla-foundation", "firefox-news", "about-mozilla", "a", "B", "zz-last")
WAITLIST_NAMES = ("vpn-plus", "monitor", "w1", "zed")

# Printable text without surrogates or NUL (PostgreSQL refuses NUL; the memory store would not).
_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=12,
)


def optional_text(max_size: int = 12) -> st.SearchStrategy[str | None]:
    return st.none() | _TEXT.map(lambda value: value[:max_size])


primary_emails = st.builds(
    "{}@{}.example".format,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=10),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
)
basket_tokens = st.none() | st.uuids().map(str)
languages = st.none() | st.sampled_from(("en", "fr", "de-DE", "es-ES", "pt"))


def email_changes(*, require_primary: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the e-mail fields (all of them, or the primary address at least, for a POST/PUT)."""
    optional = {
        "basket_token": basket_tokens,
        "double_opt_in": st.booleans(),
        "sfdc_id": optional_text(),
        "first_name": optional_text(),
        "last_name": optional_text(),
        "mailing_country": optional_text(),
        "email_format": st.sampled_from(("H", "T", "N", "")),
        "email_lang": languages,
        "has_opted_out_of_email": st.booleans(),
        "unsubscribe_reason": optional_text(),
    }
    if require_primary:
        return st.fixed_dictionaries({"primary_email": primary_emails}, optional=optional)
    return st.fixed_dictionaries({}, optional={"primary_email": primary_emails, **optional})


amo_fields: dict[str, st.SearchStrategy[Any]] = {
    "add_on_ids": optional_text(),
    "display_name": optional_text(),
    "email_opt_in": st.booleans(),
    "language": languages,
    "last_login": st.none() | st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(str),
    "location": optional_text(),
    "profile_url": optional_text(),
    "user": st.booleans(),
    "user_id": optional_text(),
    "username": optional_text(),
}
fxa_fields: dict[str, st.SearchStrategy[Any]] = {
    "fxa_id": optional_text(),
    "primary_email": st.none() | primary_emails,
    "created_date": optional_text(),
    "lang": languages,
    "first_service": optional_text(),
    "account_deleted": st.booleans(),
}
mofo_fields: dict[str, st.SearchStrategy[Any]] = {
    "mofo_email_id": optional_text(),
    "mofo_contact_id": optional_text(),
    "mofo_relevant": st.booleans(),
}
amo_changes = st.fixed_dictionaries({}, optional=amo_fields)

newsletter_fields: dict[str, st.SearchStrategy[Any]] = {
    "subscribed": st.booleans(),
    "format": st.sampled_from(("H", "T")),
    "lang": st.none() | st.sampled_from(("en", "fr", "de", "es-ES")),
    "source": st.none() | st.sampled_from(("https://www.mozilla.org/", "http://example.com/a?b=c")),
    "unsub_reason": optional_text(),
}
waitlist_fields: dict[str, st.SearchStrategy[Any]] = {
    "source": st.none() | st.just("https://www.mozilla.org/products/"),
    "fields": st.dictionaries(
        st.sampled_from(("geo", "platform", "note")),
        st.none() | st.sampled_from(("fr", "linux", "x")),
        max_size=3,
    ),
    "subscribed": st.booleans(),
    "unsub_reason": optional_text(),
}


def items(
    names: tuple[str, ...], fields: dict[str, st.SearchStrategy[Any]], max_size: int = 4
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """A list of items with distinct names, each carrying any subset of `fields`."""
    return st.lists(st.sampled_from(names), unique=True, max_size=max_size).flatmap(
        lambda chosen: st.tuples(
            *(st.fixed_dictionaries({"name": st.just(name)}, optional=fields) for name in chosen)
        ).map(list)
    )


newsletter_changes = st.just("UNSUBSCRIBE") | items(NEWSLETTER_NAMES, newsletter_fields)


@st.composite
def patch_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A PATCH body touching any of `email`, `amo` and `newsletters` (each key optional)."""
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["email"] = draw(email_changes(require_primary=False))
    if draw(st.booleans()):
        body["amo"] = draw(st.just("DELETE") | amo_changes)
    if draw(st.booleans()):
        body["newsletters"] = draw(newsletter_changes)
    return body


@st.composite
def whole_contacts(draw: st.DrawFn, *, email_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A POST/PUT body: the e-mail (with `email_id` when given), optional groups, items."""
    email = draw(email_changes(require_primary=True))
    if email_id is not None:
        email["email_id"] = str(email_id)
    body: dict[str, Any] = {"email": email}
    for group, fields in (("amo", amo_fields), ("fxa", fxa_fields), ("mofo", mofo_fields)):
        if draw(st.booleans()):
            body[group] = draw(st.fixed_dictionaries({}, optional=fields))
    if draw(st.booleans()):
        body["newsletters"] = draw(items(NEWSLETTER_NAMES, newsletter_fields))
    if draw(st.booleans()):
        body["waitlists"] = draw(items(WAITLIST_NAMES, waitlist_fields))
    return body
