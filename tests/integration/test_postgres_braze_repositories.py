"""The Braze repository contracts on PostgreSQL (tables of migration 0011)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
)
from tests.contracts.braze import BrazeDigestStoreContract, BrazeSubscriptionGroupContract

pytestmark = pytest.mark.integration


@pytest.fixture
def subscription_groups(empty_database: AsyncEngine) -> PostgresBrazeSubscriptionGroupRepository:
    return PostgresBrazeSubscriptionGroupRepository(empty_database)


@pytest.fixture
def digest_store(empty_database: AsyncEngine) -> PostgresBrazeDigestStore:
    return PostgresBrazeDigestStore(empty_database)


class TestPostgresBrazeSubscriptionGroups(BrazeSubscriptionGroupContract):
    pass


class TestPostgresBrazeDigestStore(BrazeDigestStoreContract):
    pass
