"""Operation permissions (docs/contract.md §13.1, §14.1): the rule, its administration, bearer
authorization, and the erasure audit written by ContactService.delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from ctms_adapters.memory import InMemoryStore, ManualClock, SequentialIdGenerator
from ctms_adapters.security import JwtTokenCodec
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.erasure import derive_erasure_salt, erasure_hash
from ctms_core.domain.errors import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from ctms_core.domain.permissions import (
    ADMIN,
    CONTACTS_DELETE,
    CONTACTS_READ,
    CONTACTS_WRITE,
    STANDARD_PERMISSIONS,
    STRIPE_INGEST,
    ensure_permitted,
    is_permitted,
)
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.access_control import AccessControlService
from ctms_core.services.api_clients import ApiClientService
from ctms_core.services.auth import AuthService
from ctms_core.services.contacts import ContactService
from ctms_core.services.erasures import ErasureAuditService
from tests.doubles import PlainHasher
from tests.samples import sample
from tests.unit.conftest import ContactActions

LIFETIME = timedelta(hours=1)


def _client(roles: tuple[str, ...] = (), permissions: frozenset[str] = frozenset()) -> ApiClient:
    return ApiClient(
        client_id="id_x",
        email="x@example.com",
        hashed_secret="h",
        roles=roles,
        permissions=permissions,
    )


# --- the rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("enforce", [False, True])
def test_the_admin_role_passes_every_check(enforce: bool) -> None:
    client = _client(roles=("admin",))
    for permission in STANDARD_PERMISSIONS:
        assert is_permitted(client, (permission,), enforce=enforce)


@pytest.mark.parametrize("enforce", [False, True])
def test_the_admin_permission_passes_every_check(enforce: bool) -> None:
    client = _client(roles=("operators",), permissions=frozenset({ADMIN}))
    assert is_permitted(client, (CONTACTS_DELETE,), enforce=enforce)
    assert is_permitted(client, (STRIPE_INGEST,), enforce=enforce)


def test_a_client_without_roles_passes_unless_enforced() -> None:
    client = _client()
    assert is_permitted(client, (CONTACTS_READ,), enforce=False)
    assert not is_permitted(client, (CONTACTS_READ,), enforce=True)


@pytest.mark.parametrize("enforce", [False, True])
def test_a_client_with_roles_needs_one_of_the_required_permissions(enforce: bool) -> None:
    reader = _client(roles=("viewer",), permissions=frozenset({CONTACTS_READ}))
    assert is_permitted(reader, (CONTACTS_READ,), enforce=enforce)
    assert is_permitted(reader, (CONTACTS_WRITE, CONTACTS_READ), enforce=enforce)
    assert not is_permitted(reader, (CONTACTS_WRITE,), enforce=enforce)


def test_a_client_whose_roles_grant_nothing_is_refused_even_when_not_enforced() -> None:
    assert not is_permitted(_client(roles=("empty",)), (CONTACTS_READ,), enforce=False)


def test_a_refusal_names_the_required_permissions() -> None:
    with pytest.raises(PermissionDeniedError) as raised:
        ensure_permitted(_client(roles=("r",)), (CONTACTS_WRITE, CONTACTS_DELETE), enforce=False)
    assert raised.value.detail == "Permission(s) required: contacts:write, contacts:delete"


# --- administration -------------------------------------------------------------------------------------


@pytest.fixture
def access(uow_factory: Callable[[], UnitOfWork]) -> AccessControlService:
    return AccessControlService(uow_factory)


@pytest.fixture
def api_clients(uow_factory: Callable[[], UnitOfWork], clock: ManualClock) -> ApiClientService:
    return ApiClientService(uow_factory, PlainHasher(), clock)


async def test_the_store_starts_with_the_standard_permissions_and_admin_role(
    access: AccessControlService,
) -> None:
    names = [permission.name for permission in await access.list_permissions()]
    assert names == sorted(STANDARD_PERMISSIONS)
    admin = await access.get_role("admin")
    assert admin.permissions == (ADMIN,)


async def test_roles_permissions_and_grants_round_trip(
    access: AccessControlService, api_clients: ApiClientService
) -> None:
    await api_clients.create("basket", "basket@example.com")
    await access.create_role("viewer", "Reads contacts")
    await access.grant_permission("viewer", CONTACTS_READ)
    assert await access.grant_role("basket", "viewer") is True
    assert await access.grant_role("id_basket", "viewer") is False  # already held: no change
    client = await api_clients.get("basket")
    assert (client.roles, client.permissions) == (("viewer",), frozenset({CONTACTS_READ}))
    role = await access.get_role("viewer")
    assert (role.description, role.permissions, role.clients) == (
        "Reads contacts",
        (CONTACTS_READ,),
        ("id_basket",),
    )


async def test_duplicates_and_missing_grants_are_precondition_failures(
    access: AccessControlService, api_clients: ApiClientService
) -> None:
    await api_clients.create("basket", "basket@example.com")
    await access.create_role("viewer")
    await access.grant_permission("viewer", CONTACTS_READ)
    with pytest.raises(PreconditionFailedError, match="already exists"):
        await access.create_role("viewer")
    with pytest.raises(PreconditionFailedError, match="already exists"):
        await access.create_permission(CONTACTS_READ)
    with pytest.raises(PreconditionFailedError, match="already has permission"):
        await access.grant_permission("viewer", CONTACTS_READ)
    with pytest.raises(PreconditionFailedError, match="does not have permission"):
        await access.revoke_permission("viewer", CONTACTS_WRITE)
    with pytest.raises(PreconditionFailedError, match="does not have role"):
        await access.revoke_role("basket", "viewer")


async def test_unknown_names_are_not_found(
    access: AccessControlService, api_clients: ApiClientService
) -> None:
    await api_clients.create("basket", "basket@example.com")
    with pytest.raises(NotFoundError, match="Role 'nope' not found"):
        await access.get_role("nope")
    with pytest.raises(NotFoundError, match="Permission 'nope' not found"):
        await access.grant_permission("admin", "nope")
    with pytest.raises(NotFoundError, match="API client 'id_nobody' not found"):
        await access.grant_role("nobody", "admin")
    with pytest.raises(NotFoundError):
        await access.delete_permission("nope")


async def test_invalid_names_are_bad_requests(access: AccessControlService) -> None:
    with pytest.raises(BadRequestError):
        await access.create_role("has space")
    with pytest.raises(BadRequestError):
        await access.create_permission("")


async def test_a_role_in_use_cannot_be_deleted_and_says_what_to_revoke(
    access: AccessControlService, api_clients: ApiClientService
) -> None:
    await api_clients.create("basket", "basket@example.com")
    await access.create_role("viewer")
    await access.grant_permission("viewer", CONTACTS_READ)
    await access.grant_role("basket", "viewer")
    with pytest.raises(PreconditionFailedError) as raised:
        await access.delete_role("viewer")
    assert "ctms clients revoke id_basket viewer" in raised.value.detail
    assert "ctms roles revoke viewer contacts:read" in raised.value.detail
    with pytest.raises(PreconditionFailedError) as refused:
        await access.delete_permission(CONTACTS_READ)
    assert "ctms roles revoke viewer contacts:read" in refused.value.detail

    await access.revoke_role("basket", "viewer")
    await access.revoke_permission("viewer", CONTACTS_READ)
    await access.delete_role("viewer")
    with pytest.raises(NotFoundError):
        await access.get_role("viewer")
    await access.create_permission("custom:thing", "A custom permission")
    await access.delete_permission("custom:thing")


# --- bearer authorization ---------------------------------------------------------------------------------


async def test_authenticate_brings_the_grants_and_authorize_applies_the_rule(
    uow_factory: Callable[[], UnitOfWork],
    clock: ManualClock,
    access: AccessControlService,
    api_clients: ApiClientService,
) -> None:
    codec = JwtTokenCodec("unit-test-key")
    credentials = await api_clients.create("basket", "basket@example.com")
    lenient = AuthService(uow_factory, PlainHasher(), codec, clock, LIFETIME)
    strict = AuthService(
        uow_factory, PlainHasher(), codec, clock, LIFETIME, enforce_permissions=True
    )
    token = (
        await lenient.issue_token(credentials.client_id, credentials.client_secret)
    ).access_token

    roleless = await lenient.authenticate(token)
    assert not roleless.has_roles
    lenient.authorize(roleless, (CONTACTS_DELETE,))
    with pytest.raises(PermissionDeniedError):
        strict.authorize(roleless, (CONTACTS_DELETE,))

    await access.create_role("viewer")
    await access.grant_permission("viewer", CONTACTS_READ)
    await access.grant_role("basket", "viewer")
    viewer = await lenient.authenticate(token)
    assert viewer.has_roles and viewer.permissions == frozenset({CONTACTS_READ})
    lenient.authorize(viewer, (CONTACTS_READ,))
    with pytest.raises(PermissionDeniedError):
        lenient.authorize(viewer, (CONTACTS_WRITE,))


# --- erasure audit ----------------------------------------------------------------------------------------

SALT = derive_erasure_salt("unit-test-salt")


async def test_each_erased_contact_leaves_an_audit_record_without_the_address(
    uow_factory: Callable[[], UnitOfWork], clock: ManualClock, store: InMemoryStore
) -> None:
    service = ContactService(uow_factory, clock, SequentialIdGenerator(), erasure_salt=SALT)
    act = ContactActions(service, clock)
    contact = (await act.post(sample("maximal"))).contact
    await act.post(sample("minimal"))
    [identity] = await service.delete("Mozilla-Fan@Example.com", erased_by="id_basket")

    audit = ErasureAuditService(uow_factory, SALT)
    [record] = await audit.list()
    assert (record.client_id, record.email_id) == ("id_basket", identity.email_id)
    assert record.erased_at == clock.now()
    assert record.email_hash == erasure_hash("mozilla-fan@example.com", SALT)
    assert len(record.email_hash) == 64
    assert contact.email.primary_email.lower() not in repr(store.erasures).lower()
    assert await audit.list(primary_email="MOZILLA-FAN@example.com") == [record]
    assert await audit.list(primary_email="someone-else@example.com") == []
    assert await audit.list(since=clock.now()) == [record]


async def test_a_failed_erasure_writes_no_record(
    uow_factory: Callable[[], UnitOfWork], clock: ManualClock
) -> None:
    service = ContactService(uow_factory, clock, SequentialIdGenerator(), erasure_salt=SALT)
    with pytest.raises(NotFoundError):
        await service.delete("nobody@example.com")
    assert await ErasureAuditService(uow_factory, SALT).list() == []


def test_the_hash_ignores_case_and_depends_on_the_salt() -> None:
    assert erasure_hash("A@Example.com", SALT) == erasure_hash("a@example.com", SALT)
    assert erasure_hash("a@example.com", SALT) != erasure_hash(
        "a@example.com", derive_erasure_salt("another")
    )
