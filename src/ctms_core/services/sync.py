"""SyncService: drain the Acoustic sync queue in passes (docs/contract.md §9).

One pass claims a batch of due rows (leased, so concurrent workers never take the same contact), reads
the Acoustic configuration and the contacts with their products, then uploads (or erases) with at most
`concurrency` contacts in flight. Each contact is then completed — its row deleted unless an edit arrived
during the upload, in which case the row stays for the next pass — or failed with exponential backoff and
jitter. Nothing a contact does can stop the pass: Acoustic errors and unexpected exceptions alike become
a retry, so the worker never crashes on upstream trouble (docs/contract.md §9.2).

Failures are recorded once the pass is over, when it is known whether Acoustic answered anything: a pass
that only found Acoustic unreachable is an outage, which costs the contacts no retry and pauses this
worker (`ctms_core.domain.sync.uses_a_retry`, `after_pass`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ctms_core.domain.acoustic import AcousticConfiguration, map_contact
from ctms_core.domain.contact import Contact
from ctms_core.domain.erasure import DEFAULT_ERASURE_ADDRESS_RETENTION
from ctms_core.domain.redaction import redact_addresses
from ctms_core.domain.segments import Product
from ctms_core.domain.sync import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    OUTAGE_PAUSE_CAP_SECONDS,
    AcousticOutage,
    FailureKind,
    PendingSync,
    QueueCounts,
    SyncPassStats,
    SyncState,
    after_pass,
    next_attempt_at,
    primary_email_domain,
    uses_a_retry,
)
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticCall,
    AcousticError,
    AcousticGateway,
    AcousticUnavailable,
    UploadReport,
)
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.acoustic_products import products_of_contacts
from ctms_core.services.erasures import drop_undelivered_erasure_addresses

__all__ = ["SyncObserver", "SyncPolicy", "SyncService", "failure_kind"]

sync_logger = logging.getLogger("ctms.sync")
contact_logger = logging.getLogger("ctms.acoustic_service")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPolicy:
    """The knobs of docs/contract.md §9.2 plus this rewrite's concurrency, lease and backoff."""

    batch_limit: int = 20
    retry_limit: int = 6
    concurrency: int = 5
    #: `CTMS_ACOUSTIC_SYNC_FEATURE_FLAG`: false → a pass does nothing.
    sync_enabled: bool = True
    #: `CTMS_ACOUSTIC_INTEGRATION_FEATURE_FLAG`: false → rows are consumed without calling Acoustic.
    integration_enabled: bool = True
    #: How long a claimed row stays invisible to other workers; longer than a pass can take.
    lease: timedelta = timedelta(minutes=5)
    backoff_base_s: float = BACKOFF_BASE_SECONDS
    backoff_cap_s: float = BACKOFF_CAP_SECONDS
    #: The longest pause between two attempts while Acoustic is down (the pause starts at
    #: `backoff_base_s` and doubles with each pass that finds Acoustic down).
    outage_pause_cap_s: float = OUTAGE_PAUSE_CAP_SECONDS
    #: `CTMS_ERASURE_ADDRESS_RETENTION`: how long an erased contact's address may wait in the queue for
    #: its erasure to be delivered; each pass drops the erasures that waited longer.
    erasure_retention: timedelta = DEFAULT_ERASURE_ADDRESS_RETENTION


def failure_kind(error: Exception) -> FailureKind:
    """`outage` when Acoustic gave no usable answer (unreachable, 5xx, not XML, OAuth refused);
    `rejected` when it answered and refused the contact; `error` for anything else."""
    if isinstance(error, AcousticUnavailable | AcousticAuthError):
        return "outage"
    if isinstance(error, AcousticError):
        return "rejected"
    return "error"


@dataclass(frozen=True, slots=True)
class _Failure:
    item: PendingSync
    kind: FailureKind
    error: str


class SyncObserver(Protocol):
    """Metrics hooks (docs/contract.md §11.6): every Acoustic request, every contact consumed."""

    def acoustic_call(self, call: AcousticCall) -> None: ...

    def contact_done(self, state: SyncState) -> None: ...

    def erasure_addresses_dropped(self, count: int) -> None: ...


class _NoObserver:
    def acoustic_call(self, call: AcousticCall) -> None:
        pass

    def contact_done(self, state: SyncState) -> None:
        pass

    def erasure_addresses_dropped(self, count: int) -> None:
        pass


class SyncService:
    """Drains the queue; `run_pass` is one iteration of the worker loop."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        gateway: AcousticGateway | None,
        clock: Clock,
        policy: SyncPolicy,
        *,
        observer: SyncObserver | None = None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if policy.sync_enabled and policy.integration_enabled and gateway is None:
            raise ValueError("an Acoustic gateway is required when the integration is enabled")
        self._uow_factory = uow_factory
        self._gateway = gateway
        self._clock = clock
        self.policy = policy
        self._observer: SyncObserver = observer or _NoObserver()
        self._uniform = uniform
        self.outage = AcousticOutage()

    async def counts(self) -> QueueCounts:
        """Backlog and retry backlog (docs/contract.md §9.1)."""
        async with self._uow_factory() as uow:
            return await uow.sync_queue.counts(self.policy.retry_limit)

    async def run_pass(self) -> SyncPassStats:
        """Claim one batch and sync it; the statistics of the pass (docs/contract.md §9.2 `sync_records`).

        Rules: while Acoustic is down (`self.outage` paused) the pass only counts the backlog. Failed
        contacts are recorded at the end of the pass: with a retry used and per-contact backoff, or, when
        the pass found Acoustic down, with their retry count unchanged and due when the outage pause
        ends (`uses_a_retry`, `after_pass`)."""
        policy = self.policy
        now = self._clock.now()
        stats = SyncPassStats(
            batch_limit=policy.batch_limit, retry_limit=policy.retry_limit, end_time=now.isoformat()
        )
        if not policy.sync_enabled:
            return stats
        await self._drop_undelivered_erasure_addresses(now)
        try:
            counts = await self.counts()
        except Exception:
            sync_logger.exception("Could not count the Acoustic sync backlog.")
        else:
            stats.sync_backlog, stats.retry_backlog = counts.backlog, counts.retry_backlog
        if self.outage.paused(now):
            assert self.outage.resume_at is not None
            stats.outage_pause_s = (self.outage.resume_at - now).total_seconds()
            return stats

        async with self._uow_factory() as uow:
            configuration = await uow.acoustic_config.load()
            claimed = await uow.sync_queue.claim(
                limit=policy.batch_limit,
                retry_limit=policy.retry_limit,
                now=now,
                lease_until=now + policy.lease,
            )
            await uow.commit()
        stats.count_total = len(claimed)
        if not claimed:
            return stats

        contacts, products = await self._read_contacts(claimed)
        semaphore = asyncio.Semaphore(policy.concurrency)
        ages: list[float] = []
        failures: list[_Failure] = []
        delivered = 0

        async def one(item: PendingSync) -> None:
            nonlocal delivered
            outcome = await self._process(
                item, contacts.get(item.email_id), products, configuration, semaphore
            )
            if isinstance(outcome, _Failure):
                failures.append(outcome)
                state: SyncState = "retry"
            else:
                state = outcome
                if state in ("synced", "erased"):
                    delivered += 1
            stats.count(state)
            self._observer.contact_done(state)
            if state in ("synced", "erased") and item.retry == 0:
                enqueued_at = item.update_timestamp or item.create_timestamp
                if enqueued_at is not None:
                    ages.append((self._clock.now() - enqueued_at).total_seconds())

        await asyncio.gather(*(one(item) for item in claimed))
        if ages:
            stats.age_s = max(ages)
        await self._record_failures(failures, delivered, stats)
        return stats

    async def _record_failures(
        self, failures: list[_Failure], delivered: int, stats: SyncPassStats
    ) -> None:
        """Decide whether the pass found Acoustic down, then record each failure accordingly."""
        answered = delivered > 0 or any(failure.kind == "rejected" for failure in failures)
        outage_failures = sum(1 for failure in failures if failure.kind == "outage")
        policy = self.policy
        now = self._clock.now()
        was_down = self.outage.passes > 0
        self.outage = after_pass(
            self.outage,
            acoustic_answered=answered,
            outage_failures=outage_failures,
            now=now,
            base=policy.backoff_base_s,
            cap=policy.outage_pause_cap_s,
            uniform=self._uniform,
        )
        if outage_failures and not answered:
            assert self.outage.resume_at is not None
            pause = (self.outage.resume_at - now).total_seconds()
            stats.outage_pause_s = pause
            sync_logger.warning(
                "Acoustic is unreachable: %d contact(s) keep their retries; next attempt in %.1f s.",
                outage_failures,
                pause,
                extra={"acoustic_outage_passes": self.outage.passes},
            )
        elif was_down and answered:
            sync_logger.info("Acoustic answers again; the sync resumes.")
        for failure in failures:
            if uses_a_retry(failure.kind, acoustic_answered=answered):
                retry_at = next_attempt_at(
                    failure.item.retry + 1,
                    now,
                    base=policy.backoff_base_s,
                    cap=policy.backoff_cap_s,
                    uniform=self._uniform,
                )
                await self._fail(failure.item, failure.error, retry_at, use_retry=True)
            else:
                assert self.outage.resume_at is not None
                await self._fail(
                    failure.item, failure.error, self.outage.resume_at, use_retry=False
                )

    async def _drop_undelivered_erasure_addresses(self, now: datetime) -> None:
        """Drop the queued erasures that waited longer than the retention (also while Acoustic is
        down: the bound holds whatever happens upstream)."""
        try:
            async with self._uow_factory() as uow:
                dropped = await drop_undelivered_erasure_addresses(
                    uow, now, self.policy.erasure_retention
                )
                await uow.commit()
        except Exception:
            sync_logger.exception("Could not drop the expired erasure addresses.")
            return
        if dropped:
            self._observer.erasure_addresses_dropped(len(dropped))

    async def _read_contacts(
        self, claimed: list[PendingSync]
    ) -> tuple[dict[uuid.UUID, Contact], dict[uuid.UUID, list[Product]]]:
        ids = [item.email_id for item in claimed if item.operation == "sync"]
        if not ids or not self.policy.integration_enabled:
            return {}, {}
        async with self._uow_factory() as uow:
            found = await uow.contacts.get_many(ids)
            products = await products_of_contacts(uow, found)
        return {contact.email_id: contact for contact in found}, products

    async def _process(
        self,
        item: PendingSync,
        contact: Contact | None,
        products: dict[uuid.UUID, list[Product]],
        configuration: AcousticConfiguration,
        semaphore: asyncio.Semaphore,
    ) -> SyncState | _Failure:
        """Upload or erase one contact and complete its row, or return the failure to record once the
        pass is over. Never raises."""
        if not self.policy.integration_enabled or (item.operation == "sync" and contact is None):
            # Integration off (docs/contract.md §9.2), or a contact deleted since (its erasure is its own row).
            await self._complete(item)
            return "skipped"
        context: dict[str, Any] = {"email_id": str(item.email_id)}
        address = (
            contact.email.primary_email
            if contact is not None
            else item.deletion.primary_email
            if item.deletion is not None
            else None
        )
        assert self._gateway is not None
        try:
            async with semaphore:
                if item.operation == "erase":
                    if item.deletion is None:
                        raise ValueError("an erasure without its deletion payload")
                    context["operation"] = "erase"
                    report = await self._gateway.erase(item.deletion)
                else:
                    assert contact is not None
                    record = map_contact(contact, products.get(item.email_id, ()), configuration)
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
                    "email_id": str(item.email_id),
                    "primary_email_domain": primary_email_domain(address),
                },
            )
            contact_logger.error(
                "Failure for contact in sync to acoustic...", extra={**context, "success": False}
            )
            return _Failure(item, failure_kind(error), description)
        except Exception as error:
            # Not `logger.exception`: the traceback ends with the exception's message, which may quote
            # the address; it is logged redacted, like the message.
            description = redact_addresses(repr(error))
            sync_logger.error(
                "Exception occurred when processing acoustic record: %s",
                description,
                extra={
                    "email_id": str(item.email_id),
                    "primary_email_domain": primary_email_domain(address),
                    "traceback": redact_addresses("".join(traceback.format_exception(error))),
                },
            )
            return _Failure(item, failure_kind(error), description)
        self._observe(report.calls)
        context.update(report.log_context())
        contact_logger.debug(
            "Successfully sync'd contact to acoustic...", extra={**context, "success": True}
        )
        await self._complete(item)
        return "erased" if item.operation == "erase" else "synced"

    def _observe(self, calls: tuple[AcousticCall, ...]) -> None:
        for call in calls:
            self._observer.acoustic_call(call)

    async def _complete(self, item: PendingSync) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.sync_queue.complete(item.email_id, item.version)
                await uow.commit()
        except Exception:
            # The lease expires and the contact is sent again: at-least-once.
            sync_logger.exception(
                "Could not mark a contact synced.", extra={"email_id": str(item.email_id)}
            )

    async def _fail(
        self, item: PendingSync, error: str, retry_at: datetime, *, use_retry: bool
    ) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.sync_queue.fail(
                    item.email_id, item.version, error, retry_at, use_retry=use_retry
                )
                await uow.commit()
        except Exception:
            sync_logger.exception(
                "Could not record a failed sync.", extra={"email_id": str(item.email_id)}
            )
