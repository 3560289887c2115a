"""The sync destination port: where the sync worker delivers contacts (Acoustic, Braze, or an
integrator's own).

The queue, the retry policy and the worker loop are destination-independent (docs/acoustic.md,
docs/braze.md): a worker claims the contacts pending for one destination and hands them to that
destination's `deliver` in one call. How the destination turns them into requests (one call per
contact, or many contacts per request) is its own business; what the worker needs back is, for every
contact it was given, whether it was delivered or why not.

Adding a destination means implementing this protocol in a new adapter package and naming it in the
composition root; the core does not change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

import msgspec

from ctms_core.domain.acoustic import AcousticDeletion
from ctms_core.domain.contact import Contact
from ctms_core.domain.segments import Product
from ctms_core.domain.sync import FailureKind

__all__ = ["Delivery", "DeliveryFailure", "DeliveryReport", "SyncDestination"]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One contact to deliver: its current state (`contact`, with its Stripe `products`) to create or
    update, or, for an erasure, `deletion`: what CTMS knew of the contact when it was erased."""

    email_id: uuid.UUID
    contact: Contact | None = None
    products: tuple[Product, ...] = ()
    deletion: AcousticDeletion | None = None

    @property
    def is_erasure(self) -> bool:
        return self.deletion is not None


class DeliveryFailure(msgspec.Struct, frozen=True, kw_only=True):
    """One contact the destination did not take. `kind` drives the retry policy
    (`ctms_core.domain.sync.uses_a_retry`): `outage` when the destination gave no usable answer,
    `rejected` when it answered and refused this contact, `error` for anything else. `reason` is logged
    and stored: it never holds an e-mail address, a name, a token or a key."""

    email_id: uuid.UUID
    kind: FailureKind
    reason: str


class DeliveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a `deliver` call: every contact not in `failed` was delivered. `requests` is the
    number of HTTP requests made (for calls-per-contact figures)."""

    failed: tuple[DeliveryFailure, ...] = ()
    requests: int = 0


class SyncDestination(Protocol):
    """A place contacts are synced to. `name` is its key in `CTMS_SYNC_DESTINATIONS`, in the queue, in
    metric labels and in the heartbeat (`acoustic`, `braze`)."""

    @property
    def name(self) -> str: ...

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        """Deliver the contacts; never raise for a destination's answer (a failure is reported per
        contact). An exception that escapes fails every contact given, as `error`."""
        ...
