"""The storage contract on the in-memory adapters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ctms_adapters.memory import InMemoryStore, InMemoryUnitOfWork
from ctms_core.ports.repositories import UnitOfWork
from tests.contracts.storage import (
    AcousticConfigContract,
    ApiClientRepositoryContract,
    ContactRepositoryContract,
    ErasureAuditRepositoryContract,
    RoleRepositoryContract,
    StripeRepositoryContract,
    SyncQueueContract,
    WaitlistFieldRuleContract,
)


@pytest.fixture
def uow_factory() -> Callable[[], UnitOfWork]:
    store = InMemoryStore()
    return lambda: InMemoryUnitOfWork(store)


class TestInMemoryContactRepository(ContactRepositoryContract):
    pass


class TestInMemoryApiClientRepository(ApiClientRepositoryContract):
    pass


class TestInMemoryRoleRepository(RoleRepositoryContract):
    pass


class TestInMemoryErasureAuditRepository(ErasureAuditRepositoryContract):
    pass


class TestInMemoryStripeRepository(StripeRepositoryContract):
    pass


@pytest.fixture
def seeded_uow_factory() -> Callable[[], UnitOfWork]:
    store = InMemoryStore()
    return lambda: InMemoryUnitOfWork(store)


class TestInMemorySyncQueue(SyncQueueContract):
    pass


class TestInMemoryAcousticConfig(AcousticConfigContract):
    pass


class TestInMemoryWaitlistFieldRules(WaitlistFieldRuleContract):
    pass
