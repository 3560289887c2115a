"""When an erased contact's address was dropped before its erasure reached Acoustic (docs/permissions.md,
"Erasure"). Expand-only: one nullable column, no rewrite of the table.

Revision ID: 0007_erasure_address_retention
Revises: 0006_schema_history
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_erasure_address_retention"
down_revision: str | None = "0006_schema_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "erasure_audit", sa.Column("address_dropped_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("erasure_audit", "address_dropped_at")
