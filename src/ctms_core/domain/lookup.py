"""Alternate-identifier lookup (`GET /ctms`, `GET /identities`, docs/contract.md §4.6)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ctms_core.domain import fields as f
from ctms_core.domain.errors import FieldError, MissingIdentifiersError, ValidationFailedError


@dataclass(frozen=True, slots=True)
class LookupCriteria:
    """Identifiers combined with AND. None = not given; an empty string given beside a real identifier is
    applied as a filter (and so matches nothing), as in v3.3.

    `primary_email` and `fxa_primary_email` match case-insensitively, every other one exactly.
    """

    email_id: uuid.UUID | str | None = None
    primary_email: str | None = None
    basket_token: str | None = None
    sfdc_id: str | None = None
    mofo_contact_id: str | None = None
    mofo_email_id: str | None = None
    amo_user_id: str | None = None
    fxa_id: str | None = None
    fxa_primary_email: str | None = None

    def given(self) -> dict[str, uuid.UUID | str]:
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if getattr(self, item.name) is not None
        }


IDENTIFIER_NAMES = tuple(item.name for item in fields(LookupCriteria))


def parse_lookup_criteria(params: Mapping[str, str]) -> LookupCriteria:
    """Validate the query; 400 when no identifier has a value; 422 for a malformed UUID."""
    values = {name: params[name] for name in IDENTIFIER_NAMES if name in params}
    if not any(values.values()):
        raise MissingIdentifiersError
    errors: list[FieldError] = []
    for name in ("email_id", "basket_token"):
        raw = values.get(name)
        if raw:
            try:
                parsed = f.any_uuid(raw)
            except f.InvalidValue as invalid:
                errors.append(FieldError(("query", name), invalid.msg, invalid.type))
            else:
                values[name] = str(parsed)
    if errors:
        raise ValidationFailedError(errors)
    criteria: dict[str, object] = dict(values)
    if criteria.get("email_id"):
        criteria["email_id"] = uuid.UUID(values["email_id"])
    return LookupCriteria(**criteria)  # type: ignore[arg-type]
