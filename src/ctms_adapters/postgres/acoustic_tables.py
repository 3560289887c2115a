"""The sync tables (docs/contract.md §1.4, §9), on the shared `metadata`.

`pending_acoustic` has no foreign key to `emails`: an erasure row outlives its contact. `version` is
bumped by every enqueue (an edit during an upload is synced again), `claimed_until` is the lease of the
worker holding the row, `next_attempt_at` the backoff. Imported by the package, so the metadata the
migrations are checked against always holds these tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB

from ctms_adapters.postgres.tables import _timestamps, metadata

pending_acoustic = Table(
    "pending_acoustic",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_id", Uuid(as_uuid=True), nullable=False, unique=True),
    Column("retry", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=False, server_default=text("''")),
    Column("version", BigInteger, nullable=False, server_default=text("1")),
    Column("operation", String(8), nullable=False, server_default=text("'sync'")),
    Column("deletion", JSONB),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_until", DateTime(timezone=True)),
    *_timestamps(),
)
Index(
    "ix_pending_acoustic_retry_update_timestamp",
    pending_acoustic.c.retry,
    pending_acoustic.c.update_timestamp,
)

# The pending state of each destination (docs/adr/0009-one-sync-queue.md): `pending_acoustic` is the inlet
# every contact write enqueues into (v3.3's ctms-api included); the worker routes each inlet row here, one
# row per enabled destination. `failing_since` is the first failure since the last enqueue (the give-up
# clock), `given_up_at` when the policy gave the contact up (`ctms acoustic failed`).
pending_sync = Table(
    "pending_sync",
    metadata,
    Column("destination", String(32), primary_key=True),
    Column("email_id", Uuid(as_uuid=True), primary_key=True),
    Column("retry", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=False, server_default=text("''")),
    Column("version", BigInteger, nullable=False, server_default=text("1")),
    Column("operation", String(8), nullable=False, server_default=text("'sync'")),
    Column("deletion", JSONB),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("failing_since", DateTime(timezone=True)),
    Column("given_up_at", DateTime(timezone=True)),
    *_timestamps(),
)
Index(
    "ix_pending_sync_destination_retry_update_timestamp",
    pending_sync.c.destination,
    pending_sync.c.retry,
    pending_sync.c.update_timestamp,
)
# The erasures whose address retention ended are dropped on every pass and every contact erasure.
Index(
    "ix_pending_sync_erasures_update_timestamp",
    pending_sync.c.update_timestamp,
    postgresql_where=pending_sync.c.operation == "erase",
)

acoustic_field = Table(
    "acoustic_field",
    metadata,
    Column("tablename", String(255), primary_key=True, server_default=text("'main'")),
    Column("field", String(255), primary_key=True),
)

acoustic_newsletter_mapping = Table(
    "acoustic_newsletter_mapping",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("destination", String(255), nullable=False),
)
