"""Deployment-wide request slots (docs/acoustic.md, "Deployment-wide limit"): every `ctms sync` process
leases a row of this table around each request to Acoustic, so the deployment as a whole never has more
than `CTMS_ACOUSTIC_MAX_CONCURRENT` requests in flight. Expand-only: a new table, nothing else changes.
The rows are created by the workers on first use.

Revision ID: 0010_request_slots
Revises: 0009_one_sync_queue
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_request_slots"
down_revision: str | None = "0009_one_sync_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_slots",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", "slot", name=op.f("request_slots_pkey")),
    )


def downgrade() -> None:
    op.drop_table("request_slots")
