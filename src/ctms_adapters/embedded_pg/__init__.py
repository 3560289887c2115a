"""The embedded PostgreSQL server CTMS runs on when no database URL is configured (docs/contract.md §15)."""

from ctms_adapters.embedded_pg.server import (
    DATABASE,
    SUPERUSER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
)

__all__ = ["DATABASE", "SUPERUSER", "EmbeddedPostgres", "EmbeddedPostgresError"]
