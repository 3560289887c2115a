"""No secret, bearer token or untraced e-mail address in any log line (docs/contract.md §11.2, §16.4).

Every log line the application emits while it serves a representative set of requests on PostgreSQL —
tokens, contacts created with plain and traced addresses, reads by id and by address, PATCH, DELETE,
failed authentication, 409 and 422 — is captured as MozLog JSON and scanned. The test client's own
loggers (`httpx`, `httpcore`) are not the application's and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.samples import sample
from tests.support.log_capture import CapturedLogs, captured_logs
from tests.support.postgres_app import postgres_app

pytestmark = pytest.mark.integration

TRACED = "hygiene+trace-me-mozilla-1@example.com"
PLAIN = "hygiene-plain@example.com"


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    with captured_logs() as captured:
        yield captured


async def test_no_secret_token_or_untraced_address_is_logged(
    database_url: str, empty_database: AsyncEngine, logs: CapturedLogs
) -> None:
    secrets: list[str] = []
    async with postgres_app(database_url) as app:
        credentials = await app.create_client("hygiene")
        secrets.append(credentials.client_secret)
        basic_token = await app.token(credentials)
        form = await app.http.post(
            "/token",
            data={
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
        )
        assert form.status_code == 200
        form_token = form.json()["access_token"]
        secrets += [basic_token, form_token]
        bearer = {"Authorization": f"Bearer {basic_token}"}

        plain_body = sample("maximal")
        plain_body["email"]["primary_email"] = PLAIN
        plain_body["fxa"]["primary_email"] = "hygiene-fxa@example.com"
        created = await app.http.post("/ctms", json=plain_body, headers=bearer)
        assert created.status_code == 201, created.text
        plain_id = created.json()["email"]["email_id"]
        traced_body = sample("minimal")
        traced_body["email"]["primary_email"] = TRACED
        traced = await app.http.post("/ctms", json=traced_body, headers=bearer)
        assert traced.status_code == 201, traced.text

        responses = [
            await app.http.get(f"/ctms/{plain_id}", headers=bearer),
            await app.http.get(f"/ctms?primary_email={PLAIN}", headers=bearer),
            await app.http.get(f"/identities?fxa_primary_email={PLAIN}", headers=bearer),
            await app.http.patch(
                f"/ctms/{plain_id}", json={"email": {"first_name": "Hy"}}, headers=bearer
            ),
            # 409: the address is taken
            await app.http.post("/ctms", json={"email": {"primary_email": PLAIN}}, headers=bearer),
            # 422: an invalid address and an invalid field
            await app.http.post(
                "/ctms",
                json={"email": {"primary_email": "not an address hygiene-bad@example.com"}},
                headers=bearer,
            ),
            await app.http.patch(
                f"/ctms/{plain_id}",
                json={"email": {"primary_email": "hygiene-422@", "email_format": "Z"}},
                headers=bearer,
            ),
            # failed authentication: a wrong secret, a forged token, no token
            await app.http.post(
                "/token",
                data={"grant_type": "client_credentials"},
                auth=(credentials.client_id, "secret_wrong-hygiene-secret"),
            ),
            await app.http.get(
                f"/ctms/{plain_id}", headers={"Authorization": "Bearer forged.hygiene.token"}
            ),
            await app.http.get(f"/ctms/{plain_id}"),
            await app.http.delete(f"/ctms/{PLAIN}", headers=bearer),
            await app.http.delete(f"/ctms/{TRACED}", headers=bearer),
            await app.http.delete("/ctms/hygiene-missing@example.com", headers=bearer),
        ]
        statuses = [response.status_code for response in responses]
        assert statuses == [200, 200, 200, 200, 409, 422, 422, 400, 401, 401, 200, 200, 404]
        secrets += ["secret_wrong-hygiene-secret", "forged.hygiene.token"]

    lines = logs.lines()
    assert any('"ctms.web"' in line for line in lines), "the access log was not captured"
    assert any(TRACED in line for line in lines), "the traced address should be logged"
    untraced = [PLAIN, "hygiene-fxa@example.com", "hygiene-bad@example.com", "hygiene-422@"]
    untraced += ["hygiene-missing@example.com", "hygiene@example.com"]
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"a secret or token was logged: {line}"
        for address in untraced:
            assert address.lower() not in line.lower(), f"{address} was logged: {line}"
