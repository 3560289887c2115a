"""Operation permissions over HTTP (docs/contract.md §14.1): every route checks its permission after
authentication, 403 `{"detail": "Permission(s) required: ..."}`; clients without roles keep full access
unless `CTMS_ENFORCE_PERMISSIONS`; DELETE leaves an erasure audit record naming the client.

Storage-agnostic like the rest of this package (grants go through the unit of work, never a store), and
every test runs its own application (`running_api`): grants must not leak into the shared one.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ctms_core.domain.erasure import erasure_hash
from ctms_core.domain.permissions import (
    ADMIN,
    CONTACTS_DELETE,
    CONTACTS_READ,
    CONTACTS_WRITE,
    STRIPE_INGEST,
)
from tests.http_harness import Api, RunApi, make_settings
from tests.samples import sample

UNKNOWN_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"

# (method, url, JSON body, the permission the route needs)
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", f"/ctms/{UNKNOWN_ID}", None, CONTACTS_READ),
    ("GET", "/ctms?primary_email=someone@example.com", None, CONTACTS_READ),
    ("GET", "/updates?start=2020-01-01", None, CONTACTS_READ),
    ("GET", "/identities?primary_email=someone@example.com", None, CONTACTS_READ),
    ("GET", f"/identity/{UNKNOWN_ID}", None, CONTACTS_READ),
    ("POST", "/ctms", {}, CONTACTS_WRITE),
    ("PUT", f"/ctms/{UNKNOWN_ID}", {}, CONTACTS_WRITE),
    ("PATCH", f"/ctms/{UNKNOWN_ID}", {}, CONTACTS_WRITE),
    ("DELETE", "/ctms/someone@example.com", None, CONTACTS_DELETE),
    ("GET", "/__crash__", None, ADMIN),
]
ROUTE_IDS = [f"{method} {url.split('?')[0]}" for method, url, _, _ in ROUTES]


async def grant(api: Api, client_id: str, role: str, *permissions: str) -> None:
    """Give `client_id` the role `role` granting `permissions` (creating what does not exist yet)."""
    async with api.unit_of_work() as uow:
        existing = await uow.roles.get_role(role)
        if existing is None:
            await uow.roles.add_role(role, None)
        held = existing.permissions if existing else ()
        for permission in permissions:
            if await uow.roles.get_permission(permission) is None:
                await uow.roles.add_permission(permission, None)
            if permission not in held:
                await uow.roles.grant_permission(role, permission)
        if existing is None or client_id not in existing.clients:
            await uow.roles.grant_role(client_id, role)
        await uow.commit()


async def call(api: Api, method: str, url: str, body: Any) -> Any:
    if body is None:
        return await api.request(method, url)
    return await api.request(method, url, json=body)


@pytest.mark.parametrize(("method", "url", "body", "permission"), ROUTES, ids=ROUTE_IDS)
async def test_a_client_without_the_routes_permission_gets_403(
    running_api: RunApi, method: str, url: str, body: Any, permission: str
) -> None:
    async with running_api() as api:
        # A role granting every permission but this one (and never admin).
        others = {CONTACTS_READ, CONTACTS_WRITE, CONTACTS_DELETE, STRIPE_INGEST} - {permission}
        await grant(api, "id_test", "t-others", *sorted(others))
        response = await call(api, method, url, body)
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": f"Permission(s) required: {permission}"}
        fields = api.log_fields()
        assert (fields["client_id"], fields["client_allowed"]) == ("id_test", True)


@pytest.mark.parametrize(("method", "url", "body", "permission"), ROUTES, ids=ROUTE_IDS)
async def test_a_client_with_the_routes_permission_passes(
    running_api: RunApi, method: str, url: str, body: Any, permission: str
) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        await grant(api, "id_test", "t-only", permission)
        response = await call(api, method, url, body)
        assert response.status_code != 403, response.text
        if permission == ADMIN:
            assert response.status_code == 500  # the crash test did crash


@pytest.mark.parametrize(("method", "url", "body", "permission"), ROUTES, ids=ROUTE_IDS)
async def test_a_client_without_roles_is_refused_only_when_enforced(
    running_api: RunApi, method: str, url: str, body: Any, permission: str
) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        enforced = await call(api, method, url, body)
        assert enforced.status_code == 403
        assert enforced.json() == {"detail": f"Permission(s) required: {permission}"}
    async with running_api(make_settings(enforce_permissions=False)) as api:
        lenient = await call(api, method, url, body)
        assert lenient.status_code != 403, lenient.text


@pytest.mark.parametrize("enforce", [False, True])
async def test_the_admin_role_passes_every_route(running_api: RunApi, enforce: bool) -> None:
    async with running_api(make_settings(enforce_permissions=enforce)) as api:
        await grant(api, "id_test", "admin")
        for method, url, body, _ in ROUTES:
            response = await call(api, method, url, body)
            assert response.status_code != 403, (method, url, response.text)


async def test_the_admin_permission_passes_every_route(running_api: RunApi) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        await grant(api, "id_test", "t-operators", ADMIN)
        for method, url, body, _ in ROUTES:
            response = await call(api, method, url, body)
            assert response.status_code != 403, (method, url, response.text)


async def test_authentication_failures_come_before_permission_checks(
    running_api: RunApi,
) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        anonymous = await api.get(f"/ctms/{UNKNOWN_ID}", headers={})
        assert anonymous.status_code == 401
        bad = await api.get(f"/ctms/{UNKNOWN_ID}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        disabled = await api.get(f"/ctms/{UNKNOWN_ID}", headers=api.auth("id_disabled"))
        assert disabled.status_code == 400
        assert disabled.json() == {"detail": "API Client has been disabled"}


async def test_malformed_json_is_still_422_before_the_permission_check(
    running_api: RunApi,
) -> None:
    async with running_api(make_settings(enforce_permissions=True)) as api:
        response = await api.post(
            "/ctms",
            content=b"{not json",
            headers={**api.auth(), "content-type": "application/json"},
        )
        assert response.status_code == 422


async def test_a_grant_takes_effect_on_the_next_request(running_api: RunApi) -> None:
    async with running_api() as api:
        await grant(api, "id_test", "t-viewer", CONTACTS_READ)
        contact = await api.seed(sample("minimal"))
        assert (await api.get(f"/ctms/{contact.email_id}")).status_code == 200
        refused = await api.post("/ctms", json=sample("maximal"))
        assert refused.status_code == 403
        await grant(api, "id_test", "t-viewer", CONTACTS_WRITE)
        assert (await api.post("/ctms", json=sample("maximal"))).status_code == 201


async def test_delete_records_the_erasure_with_the_client_and_no_address(
    running_api: RunApi,
) -> None:
    async with running_api() as api:
        contact = await api.seed(sample("maximal"))
        address = contact.email.primary_email
        response = await api.delete(f"/ctms/{address.upper()}")
        assert response.status_code == 200, response.text
        assert [identity["email_id"] for identity in response.json()] == [str(contact.email_id)]
        async with api.unit_of_work() as uow:
            [record] = await uow.erasures.list()
        assert (record.client_id, record.email_id) == ("id_test", contact.email_id)
        salt = api.container.erasure_salt()
        assert record.email_hash == erasure_hash(address, salt)
        assert address.lower() not in repr(record).lower()
        assert "@" not in repr(record)


async def test_a_refused_or_missing_delete_records_nothing(running_api: RunApi) -> None:
    async with running_api() as api:
        contact = await api.seed(sample("minimal"))
        missing = await api.delete(f"/ctms/{uuid.uuid4().hex}@example.com")
        assert missing.status_code == 404
        await grant(api, "id_test", "t-reader", CONTACTS_READ)
        refused = await api.delete(f"/ctms/{contact.email.primary_email}")
        assert refused.status_code == 403
        assert await api.stored(contact.email_id) is not None
        async with api.unit_of_work() as uow:
            assert await uow.erasures.list() == []
