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


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt counted under `keys` at `at`, until `FailureThrottle.forget` drops it."""

    keys: tuple[tuple[str, str], ...]
    at: datetime


class FailureThrottle:
    """Failures per key, each kind of key (`"client"`, `"address"`) with its own policy.

    An attempt counts as a failure from its start (`attempt`) until it is known to have succeeded
    (`forget`): attempts still being checked count too, so concurrent guesses cannot overtake the limit.
    """

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

    def attempt(self, keys: Iterable[tuple[str, str | None]], now: datetime) -> Attempt:
        """Count an attempt under `keys`; `TooManyAttemptsError` (nothing counted) when any key has
        used up its failures within its window."""
        counted = self._keys(keys)
        wait = timedelta(0)
        for key in counted:
            failures = self._failures.get(key)
            if failures is None:
                continue
            window = self._policies[key[0]].window
            while failures and failures[0] + window <= now:
                failures.popleft()
            if len(failures) >= self._policies[key[0]].limit:
                wait = max(wait, failures[0] + window - now)
        if wait > timedelta(0):
            raise TooManyAttemptsError(max(1, math.ceil(wait.total_seconds())))
        for key in counted:
            failures = self._failures.pop(key, None)
            if failures is None:
                if len(self._failures) >= self._max_keys:  # the key failing longest ago makes room
                    del self._failures[next(iter(self._failures))]
                failures = deque(maxlen=self._policies[key[0]].limit)
            failures.append(now)
            self._failures[key] = failures  # re-inserted: the dict is ordered by last attempt
        return Attempt(tuple(counted), now)

    def forget(self, attempt: Attempt) -> None:
        """`attempt` was not a failure (it succeeded, or could not be checked)."""
        for key in attempt.keys:
            failures = self._failures.get(key)
            if failures is not None and attempt.at in failures:
                failures.remove(attempt.at)
