"""Acoustic as a sync destination (docs/contract.md §9): map each contact and send it through the
`AcousticGateway`, one upload or erasure per contact, at most `concurrency` at a time.

Every failure is reported per contact, never raised: an `AcousticUnavailable` or `AcousticAuthError` is an
`outage` (Acoustic gave no usable answer), any other `AcousticError` a `rejected`, anything else an
`error`. The per-contact log lines of docs/contract.md §11.3 are written here, where the table statuses
are known.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ctms_core.domain.acoustic import AcousticConfiguration, map_contact
from ctms_core.domain.redaction import redact_addresses
from ctms_core.domain.sync import FailureKind, primary_email_domain
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticCall,
    AcousticError,
    AcousticGateway,
    AcousticUnavailable,
    UploadReport,
)
from ctms_core.ports.destinations import Delivery, DeliveryFailure, DeliveryReport

__all__ = ["AcousticDestination", "failure_kind"]

sync_logger = logging.getLogger("ctms.sync")
contact_logger = logging.getLogger("ctms.acoustic_service")


def failure_kind(error: Exception) -> FailureKind:
    """`outage` when Acoustic gave no usable answer (unreachable, 5xx, not XML, OAuth refused);
    `rejected` when it answered and refused the contact; `error` for anything else."""
    if isinstance(error, AcousticUnavailable | AcousticAuthError):
        return "outage"
    if isinstance(error, AcousticError):
        return "rejected"
    return "error"


def _ignore_call(call: AcousticCall) -> None:
    pass


class AcousticDestination:
    """The `acoustic` destination. `configuration` loads the field and newsletter configuration
    (docs/contract.md §1.4) once per `deliver`; `on_call` sees every XML API request (the
    `ctms_background_acoustic_request*` metrics)."""

    name = "acoustic"

    def __init__(
        self,
        gateway: AcousticGateway,
        configuration: Callable[[], Awaitable[AcousticConfiguration]],
        *,
        concurrency: int = 5,
        on_call: Callable[[AcousticCall], None] = _ignore_call,
    ) -> None:
        self._gateway = gateway
        self._configuration = configuration
        self._concurrency = concurrency
        self._on_call = on_call

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        """Upload or erase each contact, `concurrency` at a time; one failure per contact not taken."""
        configuration = await self._configuration()
        semaphore = asyncio.Semaphore(self._concurrency)
        outcomes = await asyncio.gather(
            *(self._deliver_one(delivery, configuration, semaphore) for delivery in deliveries)
        )
        failed = tuple(outcome for outcome, _ in outcomes if outcome is not None)
        return DeliveryReport(failed=failed, requests=sum(requests for _, requests in outcomes))

    async def _deliver_one(
        self,
        delivery: Delivery,
        configuration: AcousticConfiguration,
        semaphore: asyncio.Semaphore,
    ) -> tuple[DeliveryFailure | None, int]:
        context: dict[str, Any] = {"email_id": str(delivery.email_id)}
        address = (
            delivery.contact.email.primary_email
            if delivery.contact is not None
            else delivery.deletion.primary_email
            if delivery.deletion is not None
            else None
        )
        try:
            async with semaphore:
                if delivery.deletion is not None:
                    context["operation"] = "erase"
                    report = await self._gateway.erase(delivery.deletion)
                else:
                    if delivery.contact is None:
                        raise ValueError("a delivery with neither a contact nor a deletion")
                    record = map_contact(delivery.contact, delivery.products, configuration)
                    context.update(record.log_context())
                    report = await self._gateway.upload(record)
        except AcousticError as error:
            self._observe(error.calls)
            context.update(UploadReport(calls=error.calls).log_context())
            description = redact_addresses(repr(error))
            sync_logger.error(
                "Could not upload contact: %s",
                description,
                extra={
                    "email_id": str(delivery.email_id),
                    "primary_email_domain": primary_email_domain(address),
                },
            )
            contact_logger.error(
                "Failure for contact in sync to acoustic...", extra={**context, "success": False}
            )
            failure = DeliveryFailure(
                email_id=delivery.email_id, kind=failure_kind(error), reason=description
            )
            return failure, len(error.calls)
        except Exception as error:
            # Not `logger.exception`: the traceback ends with the exception's message, which may quote
            # the address; it is logged redacted, like the message.
            description = redact_addresses(repr(error))
            sync_logger.error(
                "Exception occurred when processing acoustic record: %s",
                description,
                extra={
                    "email_id": str(delivery.email_id),
                    "primary_email_domain": primary_email_domain(address),
                    "traceback": redact_addresses("".join(traceback.format_exception(error))),
                },
            )
            failure = DeliveryFailure(
                email_id=delivery.email_id, kind=failure_kind(error), reason=description
            )
            return failure, 0
        self._observe(report.calls)
        context.update(report.log_context())
        contact_logger.debug(
            "Successfully sync'd contact to acoustic...", extra={**context, "success": True}
        )
        return None, len(report.calls)

    def _observe(self, calls: tuple[AcousticCall, ...]) -> None:
        for call in calls:
            self._on_call(call)
