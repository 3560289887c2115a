"""The Acoustic sync queue's vocabulary and the sync policy (R§4.1–§4.2 with the fixes of SPEC §7).

A contact has at most one pending row. Enqueueing an edit resets its retry count and bumps its `version`,
so an edit made while a worker uploads the contact is noticed when the worker completes: the row survives
and is synced again (no lost edits, R§12.4 item 30). Erasures are pending rows too (`operation="erase"`),
carrying what to remove from Acoustic.

Failed attempts wait `retry_delay` before the next one: exponential backoff with full jitter, capped.
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
    "PendingSync",
    "QueueCounts",
    "SyncOperation",
    "SyncPassStats",
    "SyncState",
    "next_attempt_at",
    "primary_email_domain",
    "retry_delay",
]

SyncOperation = Literal["sync", "erase"]
SyncState = Literal["synced", "erased", "retry", "skipped"]

BACKOFF_BASE_SECONDS: Final = 5.0
BACKOFF_CAP_SECONDS: Final = 3600.0


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


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    """`backlog`: rows still to be attempted (retry below the limit); `retry_backlog`: rows that
    failed at least once, past the limit included (R§4.1 "Counts")."""

    backlog: int
    retry_backlog: int


class SyncPassStats(msgspec.Struct, kw_only=True):
    """What one pass did: the context of the `sync_service cycle complete` log (R§4.2, R§7.3)."""

    batch_limit: int
    retry_limit: int
    end_time: str
    sync_backlog: int | None = None
    retry_backlog: int | None = None
    count_total: int = 0
    counts: dict[str, int] = msgspec.field(default_factory=dict)
    # Seconds between the last enqueue and the upload, the largest among first attempts (R§4.2 step 7,
    # with the fix of R§12.4 item 35: the oldest, not the last).
    age_s: float | None = None

    def count(self, state: SyncState) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1

    def log_context(self) -> dict[str, object]:
        context: dict[str, object] = {
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
