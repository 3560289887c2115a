"""The Stripe mirror (docs/contract.md §1.5): customers, prices, subscriptions and their items, invoices and their lines.

Revision ID: 0004_stripe
Revises: 0003_erasure_audit
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_stripe"
down_revision: str | None = "0003_erasure_audit"
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


def upgrade() -> None:
    op.create_table(
        "stripe_customer",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("fxa_id", sa.String(length=255), nullable=False),
        sa.Column("default_source_id", sa.String(length=255), nullable=True),
        sa.Column(
            "invoice_settings_default_payment_method_id", sa.String(length=255), nullable=True
        ),
        sa.Column("stripe_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_customer_pkey")),
    )
    op.create_index("ix_stripe_customer_fxa_id", "stripe_customer", ["fxa_id"], unique=True)

    op.create_table(
        "stripe_price",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_product_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("recurring_interval", sa.String(length=5), nullable=True),
        sa.Column("recurring_interval_count", sa.Integer(), nullable=True),
        sa.Column("unit_amount", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_price_pkey")),
    )

    op.create_table(
        "stripe_subscription",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column("default_payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("default_source_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_subscription_pkey")),
    )
    op.create_index(
        "ix_stripe_subscription_stripe_customer_id", "stripe_subscription", ["stripe_customer_id"]
    )

    op.create_table(
        "stripe_subscription_item",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_created", sa.DateTime(timezone=True), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["stripe_subscription_id"],
            ["stripe_subscription.stripe_id"],
            name=op.f("stripe_subscription_item_stripe_subscription_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["stripe_price_id"],
            ["stripe_price.stripe_id"],
            name=op.f("stripe_subscription_item_stripe_price_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_subscription_item_pkey")),
    )
    op.create_index(
        "ix_stripe_subscription_item_stripe_subscription_id",
        "stripe_subscription_item",
        ["stripe_subscription_id"],
    )

    op.create_table(
        "stripe_invoice",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column("default_payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("default_source_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_invoice_pkey")),
    )
    op.create_index(
        "ix_stripe_invoice_stripe_customer_id", "stripe_invoice", ["stripe_customer_id"]
    )

    op.create_table(
        "stripe_invoice_line_item",
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_invoice_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_type", sa.String(length=14), nullable=False),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_invoice_item_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_item_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["stripe_invoice_id"],
            ["stripe_invoice.stripe_id"],
            name=op.f("stripe_invoice_line_item_stripe_invoice_id_fkey"),
        ),
        sa.ForeignKeyConstraint(
            ["stripe_price_id"],
            ["stripe_price.stripe_id"],
            name=op.f("stripe_invoice_line_item_stripe_price_id_fkey"),
        ),
        sa.PrimaryKeyConstraint("stripe_id", name=op.f("stripe_invoice_line_item_pkey")),
    )
    op.create_index(
        "ix_stripe_invoice_line_item_stripe_invoice_id",
        "stripe_invoice_line_item",
        ["stripe_invoice_id"],
    )
    op.create_index(
        "ix_stripe_invoice_line_item_stripe_price_id",
        "stripe_invoice_line_item",
        ["stripe_price_id"],
    )


def downgrade() -> None:
    op.drop_table("stripe_invoice_line_item")
    op.drop_table("stripe_invoice")
    op.drop_table("stripe_subscription_item")
    op.drop_table("stripe_subscription")
    op.drop_table("stripe_price")
    op.drop_index("ix_stripe_customer_fxa_id", table_name="stripe_customer")
    op.drop_table("stripe_customer")
