"""The Acoustic sync queue and configuration (docs/contract.md §1.4, seeds of docs/contract.md §9).

Revision ID: 0005_acoustic_sync
Revises: 0004_stripe
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_acoustic_sync"
down_revision: str | None = "0004_stripe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# docs/contract.md §9.7, as the v3 migrations seeded them (a copy: migrations never import application code).
MAIN_FIELDS = [
    "sfdc_id",
    "email",
    "amo_add_on_ids",
    "amo_display_name",
    "amo_email_opt_in",
    "amo_language",
    "amo_last_login",
    "amo_location",
    "amo_profile_url",
    "amo_user",
    "amo_user_id",
    "amo_username",
    "create_timestamp",
    "email_format",
    "email_id",
    "email_lang",
    "vpn_waitlist_geo",
    "vpn_waitlist_platform",
    "relay_waitlist_geo",
    "fxa_id",
    "fxa_account_deleted",
    "fxa_lang",
    "fxa_login_date",
    "fxa_first_service",
    "fxa_created_date",
    "fxa_primary_email",
    "double_opt_in",
    "has_opted_out_of_email",
    "mailing_country",
    "first_name",
    "last_name",
    "sumo_contributor",
    "sumo_user",
    "sumo_username",
    "basket_token",
    "unsubscribe_reason",
]
WAITLIST_FIELDS = ("geo", "platform")
NEWSLETTER_MAPPING = {
    "about-mozilla": "sub_about_mozilla",
    "app-dev": "sub_apps_and_hacks",
    "common-voice": "sub_common_voice",
    "firefox-accounts-journey": "sub_firefox_accounts_journey",
    "firefox-news": "sub_firefox_news",
    "firefox-sweepstakes": "sub_firefox_sweepstakes",
    "hubs": "sub_hubs",
    "internet-health-report": "sub_internet_health_report",
    "knowledge-is-power": "sub_knowledge_is_power",
    "miti": "sub_miti",
    "mixed-reality": "sub_mixed_reality",
    "mozilla-and-you": "sub_firefox_news",
    "mozilla-fellowship-awardee-alumni": "sub_mozilla_fellowship_awardee_alumni",
    "mozilla-festival": "sub_mozilla_festival",
    "mozilla-foundation": "sub_mozilla_foundation",
    "mozilla-rally": "sub_rally",
    "mozilla-technology": "sub_mozilla_technology",
    "mozillians-nda": "sub_mozillians_nda",
    "security-privacy-news": "sub_security_privacy_news",
    "take-action-for-the-internet": "sub_take_action_for_the_internet",
    "test-pilot": "sub_test_pilot",
}


def upgrade() -> None:
    op.create_table(
        "pending_acoustic",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pending_acoustic_pkey")),
        sa.UniqueConstraint("email_id", name=op.f("pending_acoustic_email_id_key")),
    )
    op.create_index(
        "ix_pending_acoustic_retry_update_timestamp",
        "pending_acoustic",
        ["retry", "update_timestamp"],
    )
    acoustic_field = op.create_table(
        "acoustic_field",
        sa.Column(
            "tablename", sa.String(length=255), server_default=sa.text("'main'"), nullable=False
        ),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("tablename", "field", name=op.f("acoustic_field_pkey")),
    )
    mapping = op.create_table(
        "acoustic_newsletter_mapping",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("destination", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("acoustic_newsletter_mapping_pkey")),
    )
    assert acoustic_field is not None
    assert mapping is not None
    op.bulk_insert(
        acoustic_field,
        [{"tablename": "main", "field": field} for field in MAIN_FIELDS]
        + [{"tablename": "waitlist", "field": field} for field in WAITLIST_FIELDS],
    )
    op.bulk_insert(
        mapping,
        [{"source": source, "destination": dest} for source, dest in NEWSLETTER_MAPPING.items()],
    )


def downgrade() -> None:
    op.drop_table("acoustic_newsletter_mapping")
    op.drop_table("acoustic_field")
    op.drop_index("ix_pending_acoustic_retry_update_timestamp", table_name="pending_acoustic")
    op.drop_table("pending_acoustic")
