"""Initial schema: contacts (emails + amo, fxa, mofo, newsletters, waitlists), API clients, roles.

docs/contract.md §1 with the fixes of docs/contract.md §1.6, §14; docs/compatibility.md §2: `timestamptz` everywhere, primary e-mails unique
case-insensitively, satellites deleted with their contact (ON DELETE CASCADE), `waitlists.subscribed` and
`api_client.enabled` NOT NULL default true, `waitlists.fields` JSONB, `api_client.last_access` and
`credentials_changed_at`, role link tables unique per pair. Self-contained on purpose: a migration must
keep producing the same schema whatever later happens to `ctms_adapters.postgres.tables`.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def _contact_reference(table: str) -> list[sa.Column[object] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["emails.email_id"],
            name=op.f(f"{table}_email_id_fkey"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "emails",
        sa.Column("email_id", sa.Uuid(), nullable=False),
        sa.Column("primary_email", sa.String(length=255), nullable=False),
        sa.Column("basket_token", sa.String(length=255), nullable=True),
        sa.Column("sfdc_id", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("mailing_country", sa.String(length=255), nullable=True),
        sa.Column("email_format", sa.String(length=1), nullable=True),
        sa.Column("email_lang", sa.String(length=5), nullable=True),
        sa.Column("double_opt_in", sa.Boolean(), nullable=True),
        sa.Column("has_opted_out_of_email", sa.Boolean(), nullable=True),
        sa.Column("unsubscribe_reason", sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("email_id", name=op.f("emails_pkey")),
        sa.UniqueConstraint("basket_token", name=op.f("emails_basket_token_key")),
    )
    op.create_index("bulk_read_index", "emails", ["update_timestamp", "email_id"])
    op.create_index(
        "idx_email_primary_unique_email_lower",
        "emails",
        [sa.literal_column("lower(primary_email)")],
        unique=True,
    )
    op.create_index(op.f("ix_emails_sfdc_id"), "emails", ["sfdc_id"])

    op.create_table(
        "amo",
        sa.Column("id", sa.Integer(), nullable=False),
        *_contact_reference("amo"),
        sa.Column("add_on_ids", sa.String(length=500), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("email_opt_in", sa.Boolean(), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("last_login", sa.Date(), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("profile_url", sa.String(length=40), nullable=True),
        sa.Column("user", sa.Boolean(), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("amo_pkey")),
        sa.UniqueConstraint("email_id", name=op.f("amo_email_id_key")),
    )
    op.create_index(op.f("ix_amo_user_id"), "amo", ["user_id"])

    op.create_table(
        "fxa",
        sa.Column("id", sa.Integer(), nullable=False),
        *_contact_reference("fxa"),
        sa.Column("fxa_id", sa.String(length=255), nullable=True),
        sa.Column("primary_email", sa.String(length=255), nullable=True),
        sa.Column("created_date", sa.String(length=50), nullable=True),
        sa.Column("lang", sa.String(length=255), nullable=True),
        sa.Column("first_service", sa.String(length=50), nullable=True),
        sa.Column("account_deleted", sa.Boolean(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("fxa_pkey")),
        sa.UniqueConstraint("email_id", name=op.f("fxa_email_id_key")),
        sa.UniqueConstraint("fxa_id", name=op.f("fxa_fxa_id_key")),
    )
    op.create_index(
        "idx_fxa_primary_email_lower", "fxa", [sa.literal_column("lower(primary_email)")]
    )
    op.create_index(op.f("ix_fxa_primary_email"), "fxa", ["primary_email"])

    op.create_table(
        "mofo",
        sa.Column("id", sa.Integer(), nullable=False),
        *_contact_reference("mofo"),
        sa.Column("mofo_email_id", sa.String(length=255), nullable=True),
        sa.Column("mofo_contact_id", sa.String(length=255), nullable=True),
        sa.Column("mofo_relevant", sa.Boolean(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("mofo_pkey")),
        sa.UniqueConstraint("email_id", name=op.f("mofo_email_id_key")),
        sa.UniqueConstraint("mofo_email_id", name=op.f("mofo_mofo_email_id_key")),
    )
    op.create_index(op.f("ix_mofo_mofo_contact_id"), "mofo", ["mofo_contact_id"])

    op.create_table(
        "newsletters",
        sa.Column("id", sa.Integer(), nullable=False),
        *_contact_reference("newsletters"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=True),
        sa.Column("format", sa.String(length=1), nullable=True),
        sa.Column("lang", sa.String(length=5), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("unsub_reason", sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("newsletters_pkey")),
        sa.UniqueConstraint("email_id", "name", name="uix_email_name"),
    )

    op.create_table(
        "waitlists",
        sa.Column("id", sa.Integer(), nullable=False),
        *_contact_reference("waitlists"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("subscribed", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("unsub_reason", sa.Text(), nullable=True),
        sa.Column(
            "fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("waitlists_pkey")),
        sa.UniqueConstraint("email_id", "name", name="uix_wl_email_name"),
    )

    op.create_table(
        "api_client",
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("hashed_secret", sa.String(), nullable=False),
        *_timestamps(),
        sa.Column("last_access", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credentials_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("api_client_pkey")),
    )

    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("roles_pkey")),
        sa.UniqueConstraint("name", name=op.f("roles_name_key")),
    )
    op.create_table(
        "permissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("permissions_pkey")),
        sa.UniqueConstraint("name", name=op.f("permissions_name_key")),
    )
    op.create_table(
        "role_permissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("permission_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("role_permissions_role_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["permission_id"],
            ["permissions.id"],
            name=op.f("role_permissions_permission_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("role_permissions_pkey")),
        sa.UniqueConstraint(
            "role_id", "permission_id", name=op.f("role_permissions_role_id_permission_id_key")
        ),
    )
    op.create_table(
        "api_client_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("api_client_id", sa.String(length=255), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_client_id"],
            ["api_client.client_id"],
            name=op.f("api_client_roles_api_client_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("api_client_roles_role_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("api_client_roles_pkey")),
        sa.UniqueConstraint(
            "api_client_id", "role_id", name=op.f("api_client_roles_api_client_id_role_id_key")
        ),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints; children before parents.
    for table in (
        "api_client_roles",
        "role_permissions",
        "permissions",
        "roles",
        "api_client",
        "waitlists",
        "newsletters",
        "mofo",
        "fxa",
        "amo",
        "emails",
    ):
        op.drop_table(table)
