"""In-memory adapters: the storage ports without a database, for unit tests and embedding."""

from ctms_adapters.memory.braze import (
    InMemoryBrazeDigestStore,
    InMemoryBrazeSubscriptionGroupRepository,
)
from ctms_adapters.memory.clock import ManualClock, SequentialIdGenerator
from ctms_adapters.memory.health import InMemoryDatabaseHealth
from ctms_adapters.memory.store import (
    InMemoryApiClientRepository,
    InMemoryContactRepository,
    InMemoryErasureAuditRepository,
    InMemoryRoleRepository,
    InMemoryStore,
    InMemoryUnitOfWork,
)

__all__ = [
    "InMemoryApiClientRepository",
    "InMemoryBrazeDigestStore",
    "InMemoryBrazeSubscriptionGroupRepository",
    "InMemoryContactRepository",
    "InMemoryDatabaseHealth",
    "InMemoryErasureAuditRepository",
    "InMemoryRoleRepository",
    "InMemoryStore",
    "InMemoryUnitOfWork",
    "ManualClock",
    "SequentialIdGenerator",
]
