"""The audit trail of contact erasures (docs/contract.md §14.2): proof that an address was erased, without keeping it.

A record keeps when, which API client (None for the command line), the erased `email_id` and a keyed hash
of the lower-cased primary e-mail: HMAC-SHA256 with a salt only the operators hold, so the trail can
confirm "was this address erased?" for someone who knows the address and the salt, and reveals nothing
to anyone else.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Final

import msgspec

ERASURE_SALT_CONTEXT = b"ctms-erasure-audit-v1"


#: How long an erased contact's address may wait in the Acoustic sync queue for its erasure to be
#: delivered (docs/permissions.md, "Erasure"). Three days: the worker retries a failed erasure for hours
#: (six tries with backoff) and waits out an Acoustic outage without using tries, so three days covers a
#: weekend-long outage of Acoustic or of the worker, while staying far inside the GDPR's "without undue
#: delay" (a month at most).
DEFAULT_ERASURE_ADDRESS_RETENTION: Final = timedelta(days=3)


class ErasureRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One erased contact. `id` is given by the store (None before it is stored).

    `address_dropped_at`: when the address kept for delivering the erasure to Acoustic was dropped
    before it was delivered: at the erasure itself when no destination is enabled (Acoustic sync off),
    else once the retention bound passed. None: the erasure was delivered, or is still on its way."""

    erased_at: datetime
    client_id: str | None
    email_id: uuid.UUID
    email_hash: str
    id: int | None = None
    address_dropped_at: datetime | None = None


def erasure_hash(primary_email: str, salt: bytes) -> str:
    """Hex HMAC-SHA256 of the lower-cased address keyed by `salt` (64 characters)."""
    return hmac.new(salt, primary_email.lower().encode("utf-8"), hashlib.sha256).hexdigest()


def derive_erasure_salt(secret: str) -> bytes:
    """A salt derived from a configured secret (the explicit salt, else the token key), so every
    process of a deployment hashes alike without storing another secret."""
    return hmac.new(secret.encode("utf-8"), ERASURE_SALT_CONTEXT, hashlib.sha256).digest()
