"""The erasure audit trail (docs/contract.md §14.2): one row per erased contact, no plain e-mail address.

Revision ID: 0003_erasure_audit
Revises: 0002_standard_permissions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_erasure_audit"
down_revision: str | None = "0002_standard_permissions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("erasure_audit_pkey")),
    )
    op.create_index("ix_erasure_audit_erased_at", "erasure_audit", ["erased_at"])
    op.create_index("ix_erasure_audit_email_hash", "erasure_audit", ["email_hash"])


def downgrade() -> None:
    op.drop_index("ix_erasure_audit_email_hash", table_name="erasure_audit")
    op.drop_index("ix_erasure_audit_erased_at", table_name="erasure_audit")
    op.drop_table("erasure_audit")
