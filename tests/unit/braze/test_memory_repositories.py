"""The Braze repository contracts on the memory adapters."""

from __future__ import annotations

import pytest

from ctms_adapters.memory import InMemoryBrazeDigestStore, InMemoryBrazeSubscriptionGroupRepository
from tests.contracts.braze import BrazeDigestStoreContract, BrazeSubscriptionGroupContract


@pytest.fixture
def subscription_groups() -> InMemoryBrazeSubscriptionGroupRepository:
    return InMemoryBrazeSubscriptionGroupRepository()


@pytest.fixture
def digest_store() -> InMemoryBrazeDigestStore:
    return InMemoryBrazeDigestStore()


class TestInMemoryBrazeSubscriptionGroups(BrazeSubscriptionGroupContract):
    pass


class TestInMemoryBrazeDigestStore(BrazeDigestStoreContract):
    pass
