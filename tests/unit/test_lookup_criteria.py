"""Alternate-identifier lookup rules (docs/contract.md §4.6)."""

from __future__ import annotations

import uuid

import pytest

from ctms_core.domain.errors import MissingIdentifiersError, ValidationFailedError
from ctms_core.domain.lookup import parse_lookup_criteria


@pytest.mark.parametrize(
    "params", [{}, {"primary_email": ""}, {"unknown": "x"}, {"fxa_id": "", "sfdc_id": ""}]
)
def test_no_identifier_with_a_value_is_a_bad_request(params: dict[str, str]) -> None:
    with pytest.raises(MissingIdentifiersError) as raised:
        parse_lookup_criteria(params)
    assert raised.value.detail.startswith(
        "No identifiers provided, at least one is needed: email_id,"
    )


def test_empty_identifier_beside_a_real_one_is_kept_as_a_filter() -> None:
    criteria = parse_lookup_criteria({"primary_email": "a@b", "amo_user_id": ""})
    assert criteria.given() == {"primary_email": "a@b", "amo_user_id": ""}


def test_uuid_identifiers_are_validated_and_normalised() -> None:
    email_id = uuid.uuid4()
    criteria = parse_lookup_criteria(
        {"email_id": str(email_id).upper(), "basket_token": str(email_id).upper()}
    )
    assert criteria.email_id == email_id and criteria.basket_token == str(email_id)
    with pytest.raises(ValidationFailedError) as raised:
        parse_lookup_criteria({"email_id": "nope"})
    assert raised.value.errors[0].loc == ("query", "email_id")


def test_unknown_query_keys_are_ignored() -> None:
    assert parse_lookup_criteria({"sfdc_id": "1", "page": "2"}).given() == {"sfdc_id": "1"}
