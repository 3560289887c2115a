"""`FailureThrottle`: the counting behind the throttling of `POST /token` (docs/configuration.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctms_core.domain.throttling import FailureThrottle, ThrottlePolicy, TooManyAttemptsError

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def test_a_key_is_refused_at_its_limit_until_its_oldest_failure_leaves_the_window() -> None:
    throttle = FailureThrottle({"client": ThrottlePolicy(2, WINDOW)})
    keys = [("client", "id_a")]
    throttle.record_failure(keys, NOW)
    throttle.record_failure(keys, NOW + timedelta(seconds=20))
    with pytest.raises(TooManyAttemptsError) as raised:
        throttle.check(keys, NOW + timedelta(seconds=20, milliseconds=1))
    assert raised.value.retry_after == 40
    throttle.check(keys, NOW + WINDOW)  # the first failure has left the window
    throttle.check([("client", "id_b")], NOW + timedelta(seconds=20))


def test_a_limit_of_zero_and_absent_values_count_nothing() -> None:
    throttle = FailureThrottle(
        {"client": ThrottlePolicy(0, WINDOW), "address": ThrottlePolicy(1, WINDOW)}
    )
    for _ in range(5):
        throttle.record_failure([("client", "id_a"), ("address", None)], NOW)
    throttle.check([("client", "id_a"), ("address", None)], NOW)


def test_memory_is_bounded_by_forgetting_the_keys_that_failed_longest_ago() -> None:
    throttle = FailureThrottle({"client": ThrottlePolicy(1, WINDOW)}, max_keys=2)
    for index, name in enumerate(["id_a", "id_b", "id_a", "id_c"]):
        throttle.record_failure([("client", name)], NOW + timedelta(seconds=index))
    later = NOW + timedelta(seconds=10)
    throttle.check([("client", "id_b")], later)  # forgotten: id_a failed again after it
    for name in ("id_a", "id_c"):
        with pytest.raises(TooManyAttemptsError):
            throttle.check([("client", name)], later)


def test_long_keys_are_cut() -> None:
    throttle = FailureThrottle({"client": ThrottlePolicy(1, WINDOW)})
    throttle.record_failure([("client", "x" * 1_000_000)], NOW)
    with pytest.raises(TooManyAttemptsError):
        throttle.check([("client", "x" * 300)], NOW)
