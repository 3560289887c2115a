"""Regression cases of the schemathesis finding "NUL in any text input → 500" (issue #9).

PostgreSQL stores no U+0000 in text or jsonb, so a value carrying one must be refused as invalid input
(422) or, for a lookup, simply match nothing, never reach the database as a raw 500.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.schemathesis.conftest import LiveServer

EMAIL_ID = str(uuid.uuid4())

CASES = [
    ("GET", "/identities?primary_email=a%00b", None, {200, 422}),
    ("GET", "/ctms?primary_email=a%00b", None, {200, 422}),
    ("GET", "/ctms?sfdc_id=a%00b", None, {200, 422}),
    ("DELETE", "/ctms/a%00b@example.com", None, {404, 422}),
    (
        "POST",
        "/ctms",
        {"email": {"primary_email": "n1@example.com", "first_name": "a\x00b"}},
        {422},
    ),
    (
        "POST",
        "/ctms",
        {"email": {"primary_email": "n2@example.com"}, "newsletters": [{"name": "a\x00b"}]},
        {422},
    ),
    (
        "POST",
        "/ctms",
        {
            "email": {"primary_email": "n3@example.com"},
            "waitlists": [{"name": "w", "fields": {"k": "\x00"}}],
        },
        {422},
    ),
    (
        "PUT",
        f"/ctms/{EMAIL_ID}",
        {"email": {"email_id": EMAIL_ID, "primary_email": "n4@example.com", "last_name": "\x00"}},
        {422},
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "body", "expected"),
    CASES,
    ids=[f"{c[0]} {c[1]} {i}" for i, c in enumerate(CASES)],
)
def test_a_nul_character_is_refused_not_a_server_error(
    live_server: LiveServer, method: str, url: str, body: Any, expected: set[int]
) -> None:
    response = httpx.request(
        method, f"{live_server.base_url}{url}", json=body, headers=live_server.auth, timeout=10
    )
    assert response.status_code in expected, (response.status_code, response.text)
