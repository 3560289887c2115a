"""The schema history: every revision applied to this database, as the release that applied it saw it.

An older release cannot know a newer release's scripts, so the start-up check (docs/adr/0006-schema-
revisions-at-start.md) reads from here whether the revisions past its own only add (expand). The rows are
written by the `on_version_apply` hook of `migrations/env.py` for every revision `ctms db upgrade`
applies; applying this revision also records 0001-0005 (and this one), so a database stamped at 0005 by
`ctms db adopt` gets the whole history too.

Revision ID: 0006_schema_history
Revises: 0005_acoustic_sync
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_schema_history"
down_revision: str | None = "0005_acoustic_sync"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schema_history",
        sa.Column("revision", sa.String(255), nullable=False),
        sa.Column("down_revision", sa.String(255), nullable=True),
        sa.Column("expand_only", sa.Boolean(), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("revision", name="schema_history_pkey"),
    )


def downgrade() -> None:
    op.drop_table("schema_history")
