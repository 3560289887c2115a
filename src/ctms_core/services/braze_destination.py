"""Braze as a sync destination (docs/braze.md): many contacts per request, only what changed.

`BrazeDestination.deliver` takes the contacts one worker pass claimed for `braze` and:

1. loads the subscription group mapping once (`configuration`) and the attribute digests Braze last
   accepted for those contacts (`digests`);
2. maps each contact to a `BrazeUser` (`map_contact`): only the attributes whose value changed are sent;
   a contact with nothing changed is delivered without a request;
3. sends the users with `BrazeGateway.track` (75 per request) and the erasures with `delete` (50 per
   request), both at once;
4. stores the digests of the users Braze accepted, and forgets those of the users it deleted.

Each user Braze did not take becomes a `DeliveryFailure`, by `FAILURE_KINDS`. A contact whose digests
could not be stored (or forgotten) after Braze took it fails too, as `error`: completing it would leave
digests older than what Braze holds, and a later change back to the older value would then not be sent.
Retrying it is safe, since an attributes object sets values and deleting a deleted user is no error.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from ctms_core.domain.braze import BrazeConfiguration, BrazeUser, map_contact
from ctms_core.domain.redaction import redact_addresses
from ctms_core.domain.sync import FailureKind
from ctms_core.ports.braze import BrazeDigestStore, BrazeFailure, BrazeFailureKind, BrazeGateway
from ctms_core.ports.destinations import Delivery, DeliveryFailure, DeliveryReport

__all__ = ["FAILURE_KINDS", "BrazeDestination"]

logger = logging.getLogger("ctms.sync")

# How the sync policy treats each way Braze can fail a user (docs/braze.md, "Errors and retries"):
# `outage` when Braze gave no usable answer or cannot be used at all (the worker backs off, and the
# contacts' retries are not spent while nothing gets through); `rejected` when Braze answered and refused
# the user, or the request that carried it.
FAILURE_KINDS: Final[Mapping[BrazeFailureKind, FailureKind]] = {
    "rejected": "rejected",
    "refused": "rejected",
    "unavailable": "outage",
    "rate_limited": "outage",
    "unauthorized": "outage",
}


class BrazeDestination:
    """The `braze` destination. `configuration` loads the newsletter/waitlist → subscription group
    mapping (`BrazeSubscriptionGroupRepository.load`) once per `deliver`."""

    name = "braze"

    def __init__(
        self,
        gateway: BrazeGateway,
        configuration: Callable[[], Awaitable[BrazeConfiguration]],
        digests: BrazeDigestStore,
    ) -> None:
        self._gateway = gateway
        self._configuration = configuration
        self._digests = digests

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        """Send the contacts' changed attributes and the erasures; one failure per contact not taken."""
        erasures = [delivery.email_id for delivery in deliveries if delivery.is_erasure]
        updates = [delivery for delivery in deliveries if not delivery.is_erasure]
        (
            (update_failures, track_requests),
            (erasure_failures, delete_requests),
        ) = await asyncio.gather(self._update(updates), self._erase(erasures))
        failed = (*update_failures, *erasure_failures)
        for failure in failed:
            logger.warning(
                "Could not deliver contact to braze: %s",
                failure.reason,
                extra={"email_id": str(failure.email_id), "failure_kind": failure.kind},
            )
        return DeliveryReport(failed=failed, requests=track_requests + delete_requests)

    async def _update(self, deliveries: Sequence[Delivery]) -> tuple[list[DeliveryFailure], int]:
        if not deliveries:
            return [], 0
        configuration = await self._configuration()
        previous = await self._digests.load([delivery.email_id for delivery in deliveries])
        failed: list[DeliveryFailure] = []
        to_send: list[BrazeUser] = []
        for delivery in deliveries:
            if delivery.contact is None:
                failed.append(
                    _failure(delivery.email_id, "error", "neither a contact nor an erasure")
                )
                continue
            try:
                user = map_contact(delivery.contact, configuration, previous.get(delivery.email_id))
            except Exception as error:  # a contact the mapping cannot take fails alone
                failed.append(_failure(delivery.email_id, "error", repr(error)))
                continue
            if user.has_changes:
                to_send.append(user)
        if not to_send:
            return failed, 0
        result = await self._gateway.track(to_send)
        failed.extend(_from_braze(result.failed))
        succeeded = set(result.succeeded)
        accepted = {
            user.email_id: user.digests for user in to_send if user.external_id in succeeded
        }
        try:
            await self._digests.save(accepted)
        except Exception as error:
            reason = f"Braze took the contact but its digests were not stored: {error!r}"
            failed.extend(_failure(email_id, "error", reason) for email_id in accepted)
        return failed, result.requests

    async def _erase(self, email_ids: Sequence[uuid.UUID]) -> tuple[list[DeliveryFailure], int]:
        if not email_ids:
            return [], 0
        result = await self._gateway.delete([str(email_id) for email_id in email_ids])
        failed = _from_braze(result.failed)
        deleted = [uuid.UUID(external_id) for external_id in result.deleted]
        try:
            await self._digests.forget(deleted)
        except Exception as error:
            reason = f"Braze deleted the user but its digests were not forgotten: {error!r}"
            failed.extend(_failure(email_id, "error", reason) for email_id in deleted)
        return failed, result.requests


def _failure(email_id: uuid.UUID, kind: FailureKind, reason: str) -> DeliveryFailure:
    return DeliveryFailure(email_id=email_id, kind=kind, reason=redact_addresses(reason))


def _from_braze(failures: Sequence[BrazeFailure]) -> list[DeliveryFailure]:
    return [
        _failure(
            uuid.UUID(failure.external_id),
            FAILURE_KINDS[failure.kind],
            f"{failure.kind}: {failure.reason}",
        )
        for failure in failures
    ]
