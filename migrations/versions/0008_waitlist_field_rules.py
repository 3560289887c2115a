"""Waitlist field rules as data (docs/waitlists.md): a new table, seeded with the rules CTMS v3.3 had in
code (docs/contract.md §5.9). Expand-only: a new table, nothing else changes.

The seed is a literal copy of `ctms_core.domain.waitlist_rules.SEEDED_WAITLIST_FIELD_RULES` (a migration
must not import application code that may change later); tests/unit/test_waitlist_rules.py holds the two
equal.

Revision ID: 0008_waitlist_field_rules
Revises: 0007_erasure_address_retention
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_waitlist_field_rules"
down_revision: str | None = "0007_erasure_address_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (waitlist, field, max_length, required); "*" = every waitlist without rules of its own.
SEEDED_RULES: tuple[tuple[str, str, int, bool], ...] = (
    ("*", "geo", 100, False),
    ("*", "platform", 100, False),
    ("relay", "geo", 100, False),
    ("vpn", "geo", 100, False),
    ("vpn", "platform", 100, False),
)


def upgrade() -> None:
    rules = op.create_table(
        "waitlist_field_rules",
        sa.Column("waitlist", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("max_length", sa.Integer(), nullable=False),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
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
        sa.PrimaryKeyConstraint("waitlist", "field", name=op.f("waitlist_field_rules_pkey")),
    )
    assert rules is not None
    op.bulk_insert(
        rules,
        [
            {"waitlist": waitlist, "field": field, "max_length": max_length, "required": required}
            for waitlist, field, max_length, required in SEEDED_RULES
        ],
    )


def downgrade() -> None:
    op.drop_table("waitlist_field_rules")
