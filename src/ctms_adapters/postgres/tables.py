"""The database schema as SQLAlchemy Core metadata: the single source the migrations are checked against.

Shapes follow docs/contract.md §1 (column sizes, index names of v3.3 where it had them) with the fixes of docs/contract.md §1.6, §14; docs/compatibility.md §2: every
timestamp is `timestamptz`, primary e-mails are unique case-insensitively, satellites cascade on delete,
`api_client.enabled` is NOT NULL, and the role link tables are unique per pair. Ids come from the
application (no `uuid-ossp`/`pgcrypto`, which the embedded server lacks).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# Names PostgreSQL itself would pick, so constraints created by hand and by SQLAlchemy agree and alembic's
# autogenerate comparison stays quiet.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamps() -> tuple[Column[object], Column[object]]:
    """The "TS pair" of docs/contract.md §1: set by the application, `now()` when it does not say."""
    return (
        Column(
            "create_timestamp", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column(
            "update_timestamp", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
    )


def _contact_reference(*, unique: bool = False) -> Column[object]:
    """A satellite's link to its contact: deleting the `emails` row deletes the whole contact."""
    return Column(
        "email_id",
        Uuid(as_uuid=True),
        ForeignKey("emails.email_id", ondelete="CASCADE"),
        nullable=False,
        unique=unique,
    )


emails = Table(
    "emails",
    metadata,
    Column("email_id", Uuid(as_uuid=True), primary_key=True),
    Column("primary_email", String(255), nullable=False),
    Column("basket_token", String(255), unique=True),
    Column("sfdc_id", String(255), index=True),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("mailing_country", String(255)),
    Column("email_format", String(1)),
    Column("email_lang", String(5)),
    Column("double_opt_in", Boolean),
    Column("has_opted_out_of_email", Boolean),
    Column("unsubscribe_reason", Text),
    *_timestamps(),
)
# Case-insensitive uniqueness (docs/contract.md §1.6); also serves lookups by primary e-mail.
Index("idx_email_primary_unique_email_lower", func.lower(emails.c.primary_email), unique=True)
# Keyset pagination of GET /updates.
Index("bulk_read_index", emails.c.update_timestamp, emails.c.email_id)

newsletters = Table(
    "newsletters",
    metadata,
    Column("id", Integer, primary_key=True),
    _contact_reference(),
    Column("name", String(255), nullable=False),
    Column("subscribed", Boolean),
    Column("format", String(1)),
    Column("lang", String(5)),
    Column("source", Text),
    Column("unsub_reason", Text),
    *_timestamps(),
    UniqueConstraint("email_id", "name", name="uix_email_name"),
)

waitlists = Table(
    "waitlists",
    metadata,
    Column("id", Integer, primary_key=True),
    _contact_reference(),
    Column("name", String(255), nullable=False),
    Column("source", Text),
    Column("subscribed", Boolean, nullable=False, server_default=text("true")),
    Column("unsub_reason", Text),
    Column("fields", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    *_timestamps(),
    UniqueConstraint("email_id", "name", name="uix_wl_email_name"),
)

amo = Table(
    "amo",
    metadata,
    Column("id", Integer, primary_key=True),
    _contact_reference(unique=True),
    Column("add_on_ids", String(500)),
    Column("display_name", String(255)),
    Column("email_opt_in", Boolean),
    Column("language", String(5)),
    Column("last_login", Date),
    Column("location", String(255)),
    Column("profile_url", String(40)),
    Column("user", Boolean),
    Column("user_id", String(40), index=True),
    Column("username", String(100)),
    *_timestamps(),
)

fxa = Table(
    "fxa",
    metadata,
    Column("id", Integer, primary_key=True),
    _contact_reference(unique=True),
    Column("fxa_id", String(255), unique=True),
    Column("primary_email", String(255), index=True),
    Column("created_date", String(50)),
    Column("lang", String(255)),
    Column("first_service", String(50)),
    Column("account_deleted", Boolean),
    *_timestamps(),
)
# Several contacts may share one FxA e-mail, so this one is not unique.
Index("idx_fxa_primary_email_lower", func.lower(fxa.c.primary_email))

mofo = Table(
    "mofo",
    metadata,
    Column("id", Integer, primary_key=True),
    _contact_reference(unique=True),
    Column("mofo_email_id", String(255), unique=True),
    Column("mofo_contact_id", String(255), index=True),
    Column("mofo_relevant", Boolean),
    *_timestamps(),
)

api_client = Table(
    "api_client",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("email", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("hashed_secret", String, nullable=False),
    *_timestamps(),
    Column("last_access", DateTime(timezone=True)),
    # When the secret was rotated or the client disabled: tokens issued before are revoked (docs/contract.md §3.2).
    Column("credentials_changed_at", DateTime(timezone=True)),
)

roles = Table(
    "roles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text),
)

permissions = Table(
    "permissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    Column(
        "permission_id", Integer, ForeignKey("permissions.id", ondelete="CASCADE"), nullable=False
    ),
    UniqueConstraint("role_id", "permission_id"),
)

api_client_roles = Table(
    "api_client_roles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "api_client_id",
        String(255),
        ForeignKey("api_client.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("api_client_id", "role_id"),
)

# The proof of every erasure (docs/contract.md §14.2): no plain address, and no foreign keys, so records outlive the
# contact and the API client they name.
erasure_audit = Table(
    "erasure_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("client_id", String(255)),
    Column("email_id", Uuid(as_uuid=True), nullable=False),
    Column("email_hash", String(64), nullable=False),
    # When the address kept to deliver the erasure to Acoustic was dropped undelivered (None: delivered
    # or still on its way).
    Column("address_dropped_at", DateTime(timezone=True)),
    Index("ix_erasure_audit_erased_at", "erased_at"),
    Index("ix_erasure_audit_email_hash", "email_hash"),
)

# Everything a contact is made of; deleting the `emails` row removes the rest by cascade.
CONTACT_TABLES = (emails, amo, fxa, mofo, newsletters, waitlists)

# The Stripe mirror (docs/contract.md §1.5). Stripe objects arrive in any order, so only items and line items reference
# their parent and their price; customers reach a contact only through `fxa.fxa_id = stripe_customer.fxa_id`.
stripe_customer = Table(
    "stripe_customer",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column("fxa_id", String(255), nullable=False, index=True, unique=True),
    Column("default_source_id", String(255)),
    Column("invoice_settings_default_payment_method_id", String(255)),
    Column("stripe_created", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    *_timestamps(),
)

stripe_price = Table(
    "stripe_price",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column("stripe_product_id", String(255), nullable=False),
    Column("stripe_created", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("currency", String(3), nullable=False),
    Column("recurring_interval", String(5)),
    Column("recurring_interval_count", Integer),
    Column("unit_amount", Integer),
    *_timestamps(),
)

stripe_subscription = Table(
    "stripe_subscription",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column("stripe_customer_id", String(255), nullable=False, index=True),
    Column("default_payment_method_id", String(255)),
    Column("default_source_id", String(255)),
    Column("stripe_created", DateTime(timezone=True), nullable=False),
    Column("cancel_at_period_end", Boolean, nullable=False),
    Column("canceled_at", DateTime(timezone=True)),
    Column("current_period_end", DateTime(timezone=True), nullable=False),
    Column("current_period_start", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("start_date", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    *_timestamps(),
)

stripe_subscription_item = Table(
    "stripe_subscription_item",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column(
        "stripe_subscription_id",
        String(255),
        ForeignKey("stripe_subscription.stripe_id"),
        nullable=False,
        index=True,
    ),
    Column("stripe_price_id", String(255), ForeignKey("stripe_price.stripe_id"), nullable=False),
    Column("stripe_created", DateTime(timezone=True), nullable=False),
    *_timestamps(),
)

stripe_invoice = Table(
    "stripe_invoice",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column("stripe_customer_id", String(255), nullable=False, index=True),
    Column("default_payment_method_id", String(255)),
    Column("default_source_id", String(255)),
    Column("stripe_created", DateTime(timezone=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Integer, nullable=False),
    Column("status", String(15), nullable=False),
    *_timestamps(),
)

stripe_invoice_line_item = Table(
    "stripe_invoice_line_item",
    metadata,
    Column("stripe_id", String(255), primary_key=True),
    Column(
        "stripe_invoice_id",
        String(255),
        ForeignKey("stripe_invoice.stripe_id"),
        nullable=False,
        index=True,
    ),
    Column("stripe_type", String(14), nullable=False),
    Column(
        "stripe_price_id",
        String(255),
        ForeignKey("stripe_price.stripe_id"),
        nullable=False,
        index=True,
    ),
    Column("stripe_invoice_item_id", String(255)),
    Column("stripe_subscription_id", String(255)),
    Column("stripe_subscription_item_id", String(255)),
    Column("amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    *_timestamps(),
)

STRIPE_TABLES = (
    stripe_customer,
    stripe_price,
    stripe_subscription,
    stripe_subscription_item,
    stripe_invoice,
    stripe_invoice_line_item,
)

# Waitlist field rules (docs/waitlists.md): data, so that a new rule needs no deploy. Migration 0008 seeds
# them with `ctms_core.domain.waitlist_rules.SEEDED_WAITLIST_FIELD_RULES`.
waitlist_field_rules = Table(
    "waitlist_field_rules",
    metadata,
    Column("waitlist", String(255), primary_key=True),
    Column("field", String(255), primary_key=True),
    Column("max_length", Integer, nullable=False),
    Column("required", Boolean, nullable=False, server_default=text("false")),
    *_timestamps(),
)

# Every schema revision applied to this database (written by `ctms db upgrade`, read at start):
# docs/adr/0006-schema-revisions-at-start.md.
schema_history = Table(
    "schema_history",
    metadata,
    Column("revision", String(255), primary_key=True),
    Column("down_revision", String(255)),
    Column("expand_only", Boolean, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Deployment-wide request slots (docs/acoustic.md, "Deployment-wide limit"): one row per slot of each
# upstream (`name`, e.g. `acoustic`); a slot is held while `leased_until` is in the future.
request_slots = Table(
    "request_slots",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("holder", String(128)),
    Column("leased_until", DateTime(timezone=True)),
)
