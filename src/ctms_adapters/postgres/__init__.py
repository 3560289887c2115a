"""PostgreSQL adapters: the engine, the schema, the repositories and unit of work, health checks.

Every entry point raises `DatabaseUnavailableError` (an `OSError`) when the database cannot be reached.
Migrations live in `ctms_adapters.postgres.migrations` (imported on demand: it pulls in alembic).
"""

from ctms_adapters.postgres.braze import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
)
from ctms_adapters.postgres.engine import create_engine
from ctms_adapters.postgres.health import PostgresDatabaseHealth
from ctms_adapters.postgres.tables import metadata
from ctms_adapters.postgres.unavailable import DatabaseUnavailableError
from ctms_adapters.postgres.unit_of_work import PostgresUnitOfWork, PostgresUnitOfWorkFactory

__all__ = [
    "DatabaseUnavailableError",
    "PostgresBrazeDigestStore",
    "PostgresBrazeSubscriptionGroupRepository",
    "PostgresDatabaseHealth",
    "PostgresUnitOfWork",
    "PostgresUnitOfWorkFactory",
    "create_engine",
    "metadata",
]
