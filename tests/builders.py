"""Builders for domain objects used across test tiers: `make_contact(**overrides)` and friends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ctms_core.domain.contact import Amo, Contact, Email, Fxa, Mofo, Newsletter, Waitlist
from ctms_core.domain.inputs import parse_contact_input

DEFAULT_TIME = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def make_email(**overrides: Any) -> Email:
    email_id = overrides.pop("email_id", None) or uuid.uuid4()
    values: dict[str, Any] = {
        "email_id": email_id,
        "primary_email": f"{email_id.hex[:12]}@example.com",
        "create_timestamp": DEFAULT_TIME,
        "update_timestamp": DEFAULT_TIME,
    }
    values.update(overrides)
    return Email(**values)


def make_newsletter(name: str = "firefox-news", **overrides: Any) -> Newsletter:
    values: dict[str, Any] = {
        "name": name,
        "create_timestamp": DEFAULT_TIME,
        "update_timestamp": DEFAULT_TIME,
    }
    values.update(overrides)
    return Newsletter(**values)


def make_waitlist(name: str = "vpn", **overrides: Any) -> Waitlist:
    values: dict[str, Any] = {
        "name": name,
        "create_timestamp": DEFAULT_TIME,
        "update_timestamp": DEFAULT_TIME,
    }
    values.update(overrides)
    return Waitlist(**values)


def make_contact(
    *,
    email: Email | None = None,
    amo: Amo | None = None,
    fxa: Fxa | None = None,
    mofo: Mofo | None = None,
    newsletters: tuple[Newsletter, ...] = (),
    waitlists: tuple[Waitlist, ...] = (),
    **email_overrides: Any,
) -> Contact:
    return Contact(
        email=email or make_email(**email_overrides),
        amo=amo,
        fxa=fxa,
        mofo=mofo,
        newsletters=tuple(sorted(newsletters, key=lambda item: item.name)),
        waitlists=tuple(sorted(waitlists, key=lambda item: item.name)),
    )


def contact_from_body(body: dict[str, Any], at: datetime = DEFAULT_TIME) -> Contact:
    """A stored-shape contact built from a POST body (e.g. a sample), every timestamp set to `at`."""
    parsed = parse_contact_input(body, require_email_id=True)
    assert parsed.email_id is not None
    amo = parsed.amo
    if amo is not None:
        amo = Amo(**{**_data(amo), "create_timestamp": at, "update_timestamp": at})
    return Contact(
        email=Email(
            **parsed.email, email_id=parsed.email_id, create_timestamp=at, update_timestamp=at
        ),
        amo=amo,
        fxa=parsed.fxa,
        mofo=parsed.mofo,
        newsletters=tuple(
            sorted(
                (
                    Newsletter(**{**_data(n), "create_timestamp": at, "update_timestamp": at})
                    for n in parsed.newsletters
                ),
                key=lambda item: item.name,
            )
        ),
        waitlists=tuple(
            sorted(
                (
                    Waitlist(**{**_data(w), "create_timestamp": at, "update_timestamp": at})
                    for w in parsed.waitlists
                ),
                key=lambda item: item.name,
            )
        ),
    )


def _data(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}
