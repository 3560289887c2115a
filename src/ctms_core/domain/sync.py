"""The sync queue's vocabulary and the sync policy (docs/contract.md §9, docs/acoustic.md, docs/adr/0009-one-sync-queue.md).

Contact writes enqueue into one inlet (`pending_acoustic`, the table v3.3 and its ctms-api already write);
the worker routes each inlet row to the pending state of every enabled destination (`acoustic`, `braze`),
where each destination keeps its own version, retries and backoff. Per destination, a contact has at
most one pending row. Enqueueing an edit resets its retry count and bumps its `version`,
so an edit made while a worker uploads the contact is noticed when the worker completes: the row survives
and is synced again (no lost edits, docs/contract.md §9.1). Erasures are pending rows too (`operation="erase"`),
carrying what to remove from Acoustic.

Failed attempts wait `retry_delay` before the next one: exponential backoff with full jitter, capped.

Outages are not the contact's fault (docs/contract.md §16.3: Acoustic down → nothing lost). A failure is
`rejected` (Acoustic answered and refused this contact), `outage` (no usable answer: timeout, connection
refused or dropped, HTTP 5xx, a body that is not XML, the OAuth endpoint down or refusing the grant) or
`error` (anything else, e.g. a bug). Rejections and errors always use one of the contact's retries. An
outage failure uses one only when Acoustic answered something else in the same pass (it is up, so the
trouble is this contact's); when nothing in the pass got an answer, Acoustic is down: the contacts keep
their retries and the worker pauses (`AcousticOutage`), so a long outage never turns the backlog into
"failed" contacts that need a `resync`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec

from ctms_core.domain.acoustic import AcousticDeletion

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "DEFAULT_GIVE_UP_AFTER",
    "OUTAGE_PAUSE_CAP_SECONDS",
    "AcousticOutage",
    "FailureKind",
    "PendingSync",
    "QueueCounts",
    "SyncOperation",
    "SyncPassStats",
    "SyncState",
    "after_pass",
    "gives_up",
    "next_attempt_at",
    "primary_email_domain",
    "retry_delay",
    "uses_a_retry",
]

SyncOperation = Literal["sync", "erase"]
SyncState = Literal["synced", "erased", "retry", "skipped"]
FailureKind = Literal["rejected", "outage", "error"]

BACKOFF_BASE_SECONDS: Final = 5.0
BACKOFF_CAP_SECONDS: Final = 3600.0
# The longest pause between two probes of an Acoustic that is down: short enough that the backlog starts
# draining within minutes of its return, long enough not to hammer it.
OUTAGE_PAUSE_CAP_SECONDS: Final = 300.0
# How long a contact must have failed without a break before it is given up (`CTMS_SYNC_GIVE_UP_AFTER_SECONDS`):
# longer than any outage a destination is expected to come back from.
DEFAULT_GIVE_UP_AFTER: Final = timedelta(hours=24)


class PendingSync(msgspec.Struct, frozen=True, kw_only=True):
    """One claimed queue row: what to send, and the `version` to hand back to `complete`/`fail`."""

    email_id: uuid.UUID
    version: int
    retry: int = 0
    operation: SyncOperation = "sync"
    deletion: AcousticDeletion | None = None
    last_error: str = ""
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None
    #: The first failure since the contact was last enqueued (None: no failure yet).
    failing_since: datetime | None = None

    @property
    def queued_at(self) -> datetime | None:
        """When this version was enqueued (an erasure: when the contact was erased)."""
        return self.update_timestamp or self.create_timestamp


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Of one destination: `backlog`, every contact not yet delivered and not given up (retrying ones
    included, and the inlet rows not yet routed); `retry_backlog`, rows that failed at least once since
    their last enqueue (a retry counted, or an error recorded by an outage that kept the retry count),
    given-up ones included (docs/contract.md §9.1); `oldest_erasure_at`, when the oldest erasure still
    waiting for this destination was queued (None: none waits)."""

    backlog: int
    retry_backlog: int
    oldest_erasure_at: datetime | None = None


class SyncPassStats(msgspec.Struct, kw_only=True):
    """What one pass did: the context of the `sync_service cycle complete` log (docs/contract.md §9.2, §11.3)."""

    destination: str = "acoustic"
    batch_limit: int
    retry_limit: int
    end_time: str
    sync_backlog: int | None = None
    retry_backlog: int | None = None
    count_total: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    # Seconds between the last enqueue and the upload, the largest among first attempts (docs/contract.md §9.2,
    # with the fix of docs/contract.md §11.6: the oldest, not the last).
    age_s: float | None = None
    # While the destination is down: how long this worker waits before it tries again.
    outage_pause_s: float | None = None
    # Seconds the oldest erasure still waiting for this destination has waited.
    oldest_erasure_age_s: float | None = None

    def count(self, state: SyncState) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1

    def log_context(self) -> dict[str, object]:
        context: dict[str, object] = {
            "destination": self.destination,
            "batch_limit": self.batch_limit,
            "retry_limit": self.retry_limit,
            "end_time": self.end_time,
            "count_total": self.count_total,
        }
        if self.sync_backlog is not None:
            context["sync_backlog"] = self.sync_backlog
        if self.retry_backlog is not None:
            context["retry_backlog"] = self.retry_backlog
        for state, count in sorted(self.counts.items()):
            context[f"count_{state}"] = count
        if self.outage_pause_s is not None:
            context["acoustic_outage_pause_s"] = round(self.outage_pause_s, 3)
        if self.oldest_erasure_age_s is not None:
            context["oldest_erasure_age_s"] = round(self.oldest_erasure_age_s, 3)
        return context


def retry_delay(
    retry: int,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    uniform: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """How long to wait after the `retry`-th failure (1 = first): exponential in `retry`, capped, with
    jitter — a random delay between half and all of the exponential step, so workers that failed
    together do not retry together."""
    step = min(cap, base * (2 ** max(retry - 1, 0)))
    return timedelta(seconds=uniform(step / 2, step))


def next_attempt_at(
    retry: int,
    now: datetime,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    uniform: Callable[[float, float], float] = random.uniform,
) -> datetime:
    """When a contact that has now failed `retry` times may be attempted again."""
    return now + retry_delay(retry, base=base, cap=cap, uniform=uniform)


def primary_email_domain(address: str | None) -> str:
    """The part after `@` of an address, `unknown` without one (the `primary_email_domain` log field)."""
    if not address or "@" not in address:
        return "unknown"
    return address.rsplit("@", 1)[1]


def gives_up(
    item: PendingSync, now: datetime, *, retry_limit: int, give_up_after: timedelta
) -> bool:
    """Whether a contact that just failed (again) is given up: only a sync, never an erasure (it keeps
    retrying until it is delivered or its address retention ends); only once it has used
    `retry_limit` retries with this failure, and has failed without a break for at least
    `give_up_after` (a few minutes of flakiness burn retries, not the contact)."""
    if item.operation == "erase":
        return False
    failing_since = item.failing_since or now
    return item.retry + 1 >= retry_limit and now - failing_since >= give_up_after


def uses_a_retry(kind: FailureKind, *, acoustic_answered: bool) -> bool:
    """Whether a failed attempt counts against the contact's retry budget (`CTMS_ACOUSTIC_RETRY_LIMIT`):
    always for a rejection or an error; for an outage failure only when Acoustic answered other
    requests of the same pass (`acoustic_answered`: a contact got through, or Acoustic rejected one)."""
    return kind != "outage" or acoustic_answered


class AcousticOutage(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's view of Acoustic being down: `passes` in a row in which nothing got an answer and at
    least one request found Acoustic unreachable, and `resume_at`, before which the worker claims nothing
    and the contacts of those passes are not due. `AcousticOutage()` is "Acoustic is up"."""

    passes: int = 0
    resume_at: datetime | None = None

    def paused(self, now: datetime) -> bool:
        """Whether the worker should wait rather than claim contacts at `now`."""
        return self.resume_at is not None and now < self.resume_at


def after_pass(
    outage: AcousticOutage,
    *,
    acoustic_answered: bool,
    outage_failures: int,
    now: datetime,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = OUTAGE_PAUSE_CAP_SECONDS,
    uniform: Callable[[float, float], float] = random.uniform,
) -> AcousticOutage:
    """The outage state after a pass. An answer from Acoustic ends the outage. A pass that found it
    unreachable and got no answer extends it: the pause grows like the per-contact backoff (exponential
    in the outage's passes, capped by `cap`, with jitter). A pass that reached nothing (no contact, or
    only errors before any request) changes nothing."""
    if acoustic_answered:
        return AcousticOutage()
    if outage_failures == 0:
        return outage
    passes = outage.passes + 1
    return AcousticOutage(
        passes=passes, resume_at=now + retry_delay(passes, base=base, cap=cap, uniform=uniform)
    )
