"""Throttling of failed credential checks (`POST /token`, docs/configuration.md "Throttling").

Each failure is counted under several keys (the client id claimed, the caller's address). A key that
failed `limit` times within the last `window` is refused until its oldest counted failure leaves the
window: the answer says when (`Retry-After`). The counts live in the process (each API process counts
on its own), in memory bounded by `max_keys`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctms_core.domain.errors import CoreError

MAX_KEY_CHARS = 256


class TooManyAttemptsError(CoreError):
    """429: too many failed attempts under one of the request's keys; `retry_after` in seconds."""

    detail = "Too many failed attempts, try again later"
    reason = "Too many failures"  # the `token_fail` log value

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """At most `limit` failures per key within `window`; `limit` 0 turns the key kind off."""

    limit: int
    window: timedelta


class FailureThrottle:
    """Failures per key, each kind of key (`"client"`, `"address"`) with its own policy."""

    def __init__(self, policies: dict[str, ThrottlePolicy], *, max_keys: int = 10_000) -> None:
        self._policies = {kind: policy for kind, policy in policies.items() if policy.limit > 0}
        self._max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[datetime]] = {}

    def _keys(self, keys: Iterable[tuple[str, str | None]]) -> list[tuple[str, str]]:
        # Values are the caller's text: cut, so that `max_keys` bounds the memory too.
        return [
            (kind, value[:MAX_KEY_CHARS])
            for kind, value in keys
            if value and kind in self._policies
        ]

    def check(self, keys: Iterable[tuple[str, str | None]], now: datetime) -> None:
        """Raise `TooManyAttemptsError` when any key has used up its failures."""
        wait = timedelta(0)
        for key in self._keys(keys):
            failures = self._failures.get(key)
            policy = self._policies[key[0]]
            if failures is not None and len(failures) >= policy.limit:
                wait = max(wait, failures[0] + policy.window - now)
        if wait > timedelta(0):
            raise TooManyAttemptsError(max(1, math.ceil(wait.total_seconds())))

    def record_failure(self, keys: Iterable[tuple[str, str | None]], now: datetime) -> None:
        for key in self._keys(keys):
            policy = self._policies[key[0]]
            failures = self._failures.pop(key, None)
            if failures is None:
                if len(self._failures) >= self._max_keys:  # the key failing longest ago makes room
                    del self._failures[next(iter(self._failures))]
                failures = deque(maxlen=policy.limit)
            while failures and failures[0] + policy.window <= now:
                failures.popleft()
            failures.append(now)
            self._failures[key] = failures  # re-inserted: the dict is ordered by last failure
