"""One sync queue, any number of destinations (docs/adr/0009-one-sync-queue.md): each destination's pending
state per contact in a new table, `pending_sync`. Expand-only: `pending_acoustic` is unchanged and stays
the inlet every contact write enqueues into, v3.3's ctms-api included; the worker routes its rows here.

Revision ID: 0009_one_sync_queue
Revises: 0008_waitlist_field_rules
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_one_sync_queue"
down_revision: str | None = "0008_waitlist_field_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_sync",
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("retry", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "operation", sa.String(length=8), server_default=sa.text("'sync'"), nullable=False
        ),
        sa.Column("deletion", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "create_timestamp",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "update_timestamp",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("destination", "email_id", name=op.f("pending_sync_pkey")),
    )
    op.create_index(
        "ix_pending_sync_destination_retry_update_timestamp",
        "pending_sync",
        ["destination", "retry", "update_timestamp"],
    )

    op.create_index(
        "ix_pending_sync_erasures_update_timestamp",
        "pending_sync",
        ["update_timestamp"],
        postgresql_where=sa.text("operation = 'erase'"),
    )


def downgrade() -> None:
    op.drop_index("ix_pending_sync_erasures_update_timestamp", table_name="pending_sync")
    op.drop_index("ix_pending_sync_destination_retry_update_timestamp", table_name="pending_sync")
    op.drop_table("pending_sync")
