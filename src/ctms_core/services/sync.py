"""SyncService: drain one destination's share of the sync queue in passes (docs/contract.md §9,
docs/acoustic.md, docs/adr/0009-one-sync-queue.md).

The service knows nothing of the destination beyond the `SyncDestination` port. One pass routes new inlet
rows to every enabled destination, claims a batch of this destination's due rows (leased, so concurrent
workers never take the same contact), reads the contacts with their products, and hands them to
`destination.deliver` in one call. Each delivered contact is then completed — its row deleted unless an
edit arrived during the delivery, in which case the row stays for the next pass — and each failed one is
recorded with exponential backoff and jitter (one jittered time per attempt number and pass, so the
contacts failed together are retried together). Nothing a contact does can stop the pass: a destination
that raises fails the whole batch as `error`, and the worker never crashes on upstream trouble
(docs/contract.md §9.2).

Failures are recorded once the batch is over, when it is known whether the destination answered
anything: a batch that only found it unreachable is an outage, which costs the contacts no retry and
pauses this destination's loop (`ctms_core.domain.sync.uses_a_retry`, `after_pass`). A contact is given
up only after `retry_limit` retries and `give_up_after` of failures without a break
(`ctms_core.domain.sync.gives_up`); an erasure never is.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ctms_core.domain.contact import Contact
from ctms_core.domain.erasure import DEFAULT_ERASURE_ADDRESS_RETENTION
from ctms_core.domain.redaction import redact_addresses
from ctms_core.domain.segments import Product
from ctms_core.domain.sync import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    DEFAULT_GIVE_UP_AFTER,
    OUTAGE_PAUSE_CAP_SECONDS,
    AcousticOutage,
    PendingSync,
    QueueCounts,
    SyncPassStats,
    SyncState,
    after_pass,
    gives_up,
    next_attempt_at,
    uses_a_retry,
)
from ctms_core.ports.clock import Clock
from ctms_core.ports.destinations import Delivery, DeliveryFailure, SyncDestination
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.acoustic_products import products_of_contacts
from ctms_core.services.erasures import drop_undelivered_erasure_addresses

__all__ = ["SyncObserver", "SyncPolicy", "SyncService"]

sync_logger = logging.getLogger("ctms.sync")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPolicy:
    """The knobs of docs/contract.md §9.2 plus this rewrite's destinations, lease, backoff and give-up."""

    batch_limit: int = 20
    #: With `give_up_after`: a contact is given up once it used this many retries…
    retry_limit: int = 6
    #: …and has failed without a break for this long (`CTMS_SYNC_GIVE_UP_AFTER_SECONDS`).
    give_up_after: timedelta = DEFAULT_GIVE_UP_AFTER
    #: `CTMS_SYNC_DESTINATIONS`: every destination the inlet's rows are routed to.
    destinations: tuple[str, ...] = ("acoustic",)
    #: `CTMS_ACOUSTIC_SYNC_FEATURE_FLAG`: false → a pass does nothing.
    sync_enabled: bool = True
    #: `CTMS_ACOUSTIC_INTEGRATION_FEATURE_FLAG`: false → rows are consumed without calling the destination.
    integration_enabled: bool = True
    #: How long a claimed row stays invisible to other workers; longer than a pass can take.
    lease: timedelta = timedelta(minutes=5)
    backoff_base_s: float = BACKOFF_BASE_SECONDS
    backoff_cap_s: float = BACKOFF_CAP_SECONDS
    #: The longest pause between two attempts while the destination is down (the pause starts at
    #: `backoff_base_s` and doubles with each pass that finds it down).
    outage_pause_cap_s: float = OUTAGE_PAUSE_CAP_SECONDS
    #: `CTMS_ERASURE_ADDRESS_RETENTION`: how long an erased contact's address may wait in the queue for
    #: its erasure to be delivered; each pass drops the erasures that waited longer.
    erasure_retention: timedelta = DEFAULT_ERASURE_ADDRESS_RETENTION


class SyncObserver(Protocol):
    """Metrics hooks (docs/contract.md §11.6): every contact consumed, every erased address dropped."""

    def contact_done(self, destination: str, state: SyncState) -> None: ...

    def erasure_addresses_dropped(self, count: int) -> None: ...


class _NoObserver:
    def contact_done(self, destination: str, state: SyncState) -> None:
        pass

    def erasure_addresses_dropped(self, count: int) -> None:
        pass


class SyncService:
    """Drains one destination's queue; `run_pass` is one iteration of its worker loop. Passes may
    run concurrently (the worker keeps several batches in flight): claims never overlap."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        destination: SyncDestination,
        clock: Clock,
        policy: SyncPolicy,
        *,
        observer: SyncObserver | None = None,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._uow_factory = uow_factory
        self.destination = destination
        self._clock = clock
        self.policy = policy
        self._observer: SyncObserver = observer or _NoObserver()
        self._uniform = uniform
        self.outage = AcousticOutage()

    @property
    def name(self) -> str:
        return self.destination.name

    async def counts(self) -> QueueCounts:
        """This destination's backlog, retry backlog and oldest waiting erasure (docs/contract.md §9.1)."""
        async with self._uow_factory() as uow:
            return await uow.sync_queue.counts(self.name)

    async def run_pass(self) -> SyncPassStats:
        """Claim one batch and deliver it; the statistics of the pass (docs/contract.md §9.2 `sync_records`).

        Rules: while the destination is down (`self.outage` paused) the pass only counts the backlog.
        Failed contacts are recorded at the end of the pass: with a retry used and per-contact backoff,
        or, when the pass found the destination down, with their retry count unchanged and due when the
        outage pause ends (`uses_a_retry`, `after_pass`)."""
        policy = self.policy
        now = self._clock.now()
        stats = SyncPassStats(
            destination=self.name,
            batch_limit=policy.batch_limit,
            retry_limit=policy.retry_limit,
            end_time=now.isoformat(),
        )
        if not policy.sync_enabled:
            return stats
        await self._drop_undelivered_erasure_addresses(now)
        try:
            counts = await self.counts()
        except Exception:
            sync_logger.exception(
                "Could not count the sync backlog.", extra={"destination": self.name}
            )
        else:
            stats.sync_backlog, stats.retry_backlog = counts.backlog, counts.retry_backlog
            if counts.oldest_erasure_at is not None:
                stats.oldest_erasure_age_s = (now - counts.oldest_erasure_at).total_seconds()
        if self.outage.paused(now):
            assert self.outage.resume_at is not None
            stats.outage_pause_s = (self.outage.resume_at - now).total_seconds()
            return stats

        async with self._uow_factory() as uow:
            await uow.sync_queue.route(policy.destinations, limit=policy.batch_limit, now=now)
            claimed = await uow.sync_queue.claim(
                self.name, limit=policy.batch_limit, now=now, lease_until=now + policy.lease
            )
            await uow.commit()
        stats.count_total = len(claimed)
        if not claimed:
            return stats

        contacts, products = await self._read_contacts(claimed)
        deliveries: list[Delivery] = []
        skipped: list[PendingSync] = []
        for item in claimed:
            contact = contacts.get(item.email_id)
            if not policy.integration_enabled or (item.operation == "sync" and contact is None):
                # Integration off (docs/contract.md §9.2), or a contact deleted since (its erasure is its
                # own row).
                skipped.append(item)
                continue
            deliveries.append(
                Delivery(
                    email_id=item.email_id,
                    contact=contact if item.operation == "sync" else None,
                    products=tuple(products.get(item.email_id, ())),
                    deletion=item.deletion if item.operation == "erase" else None,
                )
            )
        failed = await self._deliver(deliveries) if deliveries else {}

        handed = {delivery.email_id for delivery in deliveries}
        delivered = [
            item for item in claimed if item.email_id in handed and item.email_id not in failed
        ]
        await self._complete((*skipped, *delivered))
        done = self._clock.now()
        ages = [
            (done - item.queued_at).total_seconds()
            for item in delivered
            if item.retry == 0 and item.queued_at is not None
        ]
        if ages:
            stats.age_s = max(ages)
        for _ in skipped:
            self._count(stats, "skipped")
        for item in delivered:
            self._count(stats, "erased" if item.operation == "erase" else "synced")
        failures = [
            (item, failed[item.email_id])
            for item in claimed
            if item.email_id in handed and item.email_id in failed
        ]
        await self._record_failures(failures, len(delivered), stats)
        return stats

    def _count(self, stats: SyncPassStats, state: SyncState) -> None:
        stats.count(state)
        self._observer.contact_done(self.name, state)

    async def _deliver(self, deliveries: Sequence[Delivery]) -> dict[uuid.UUID, DeliveryFailure]:
        """The destination's failures by contact; an exception that escapes it fails them all."""
        try:
            report = await self.destination.deliver(deliveries)
        except Exception as error:
            description = redact_addresses(repr(error))
            sync_logger.error(
                "The %s destination failed a whole batch: %s",
                self.name,
                description,
                extra={"destination": self.name, "count": len(deliveries)},
            )
            return {
                delivery.email_id: DeliveryFailure(
                    email_id=delivery.email_id, kind="error", reason=description
                )
                for delivery in deliveries
            }
        return {failure.email_id: failure for failure in report.failed}

    async def _record_failures(
        self,
        failures: list[tuple[PendingSync, DeliveryFailure]],
        delivered: int,
        stats: SyncPassStats,
    ) -> None:
        """Decide whether the pass found the destination down, then record each failure accordingly."""
        answered = delivered > 0 or any(failure.kind == "rejected" for _, failure in failures)
        outage_failures = sum(1 for _, failure in failures if failure.kind == "outage")
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
                "%s is unreachable: %d contact(s) keep their retries; next attempt in %.1f s.",
                self.name,
                outage_failures,
                pause,
                extra={"destination": self.name, "acoustic_outage_passes": self.outage.passes},
            )
        elif was_down and answered:
            sync_logger.info("%s answers again; the sync resumes.", self.name)
        # One jittered time per attempt number and pass: the contacts a destination failed together (a
        # Braze request of 75 users, an Acoustic relational request) come due together and go back in
        # one request, not in ones and twos over the jitter's window. Passes and workers still draw
        # their own times.
        retry_times: dict[int, datetime] = {}
        for item, failure in failures:
            if uses_a_retry(failure.kind, acoustic_answered=answered):
                attempt = item.retry + 1
                if attempt not in retry_times:
                    retry_times[attempt] = next_attempt_at(
                        attempt,
                        now,
                        base=policy.backoff_base_s,
                        cap=policy.backoff_cap_s,
                        uniform=self._uniform,
                    )
                retry_at = retry_times[attempt]
                give_up = gives_up(
                    item, now, retry_limit=policy.retry_limit, give_up_after=policy.give_up_after
                )
                if give_up:
                    sync_logger.warning(
                        "Gave up syncing a contact to %s after %d attempts.",
                        self.name,
                        item.retry + 1,
                        extra={"destination": self.name, "email_id": str(item.email_id)},
                    )
                await self._fail(item, failure.reason, retry_at, use_retry=True, give_up=give_up)
                self._count(stats, "retry")
            else:
                assert self.outage.resume_at is not None
                await self._fail(item, failure.reason, self.outage.resume_at, use_retry=False)
                self._count(stats, "retry")

    async def _drop_undelivered_erasure_addresses(self, now: datetime) -> None:
        """Drop the queued erasures that waited longer than the retention (also while the destination
        is down: the bound holds whatever happens upstream)."""
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

    async def _complete(self, items: Sequence[PendingSync]) -> None:
        if not items:
            return
        try:
            async with self._uow_factory() as uow:
                await uow.sync_queue.complete(
                    self.name, {item.email_id: item.version for item in items}
                )
                await uow.commit()
        except Exception:
            # The leases expire and the contacts are sent again: at-least-once.
            sync_logger.exception(
                "Could not mark contacts synced.",
                extra={"destination": self.name, "count": len(items)},
            )

    async def _fail(
        self,
        item: PendingSync,
        error: str,
        retry_at: datetime,
        *,
        use_retry: bool,
        give_up: bool = False,
    ) -> None:
        try:
            async with self._uow_factory() as uow:
                await uow.sync_queue.fail(
                    self.name,
                    item.email_id,
                    item.version,
                    error,
                    retry_at,
                    now=self._clock.now(),
                    use_retry=use_retry,
                    give_up=give_up,
                )
                await uow.commit()
        except Exception:
            sync_logger.exception(
                "Could not record a failed sync.",
                extra={"destination": self.name, "email_id": str(item.email_id)},
            )
