"""The Braze destination's tables (docs/braze.md): the newsletter/waitlist → subscription group mapping,
and the per-contact digests of the attributes Braze last accepted. Expand-only: two new tables.

Revision ID: 0011_braze
Revises: 0010_request_slots
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_braze"
down_revision: str | None = "0010_request_slots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> tuple[sa.Column[object], sa.Column[object]]:
    return (
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
    )


def upgrade() -> None:
    op.create_table(
        "braze_subscription_group",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.String(length=255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("kind", "name", name=op.f("braze_subscription_group_pkey")),
    )
    op.create_table(
        "braze_attribute_digests",
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("digests", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("email_id", name=op.f("braze_attribute_digests_pkey")),
    )


def downgrade() -> None:
    op.drop_table("braze_attribute_digests")
    op.drop_table("braze_subscription_group")
