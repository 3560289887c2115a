"""The Braze tables (docs/braze.md), on the shared `metadata`; migration 0011 creates them.

`braze_subscription_group` maps a newsletter or waitlist name to a Braze subscription group id, like
`acoustic_newsletter_mapping` does for Acoustic. `braze_attribute_digests` holds, per contact, the digests
of the attributes Braze last accepted; it has no foreign key to `emails`, since the erasure that removes
a contact is delivered (and forgets the digests) after the contact is gone.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from ctms_adapters.postgres.tables import _timestamps, metadata

braze_subscription_group = Table(
    "braze_subscription_group",
    metadata,
    Column("kind", String(16), primary_key=True),  # "newsletter" or "waitlist"
    Column("name", String(255), primary_key=True),
    Column("group_id", String(255), nullable=False),
    *_timestamps(),
)

braze_attribute_digests = Table(
    "braze_attribute_digests",
    metadata,
    Column("email_id", Uuid(as_uuid=True), primary_key=True),
    Column("digests", JSONB, nullable=False),
    *_timestamps(),
)
