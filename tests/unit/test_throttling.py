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
    throttle.attempt(keys, NOW)
    throttle.attempt(keys, NOW + timedelta(seconds=20))
    with pytest.raises(TooManyAttemptsError) as raised:
        throttle.attempt(keys, NOW + timedelta(seconds=20, milliseconds=1))
    assert raised.value.retry_after == 40
    throttle.attempt([("client", "id_b")], NOW + timedelta(seconds=20))
    throttle.attempt(keys, NOW + WINDOW)  # the first failure has left the window


def test_attempts_in_progress_count_and_forgotten_ones_do_not() -> None:
    """Concurrent guesses cannot overtake the limit; successes are not failures."""
    throttle = FailureThrottle({"client": ThrottlePolicy(2, WINDOW)})
    keys = [("client", "id_a")]
    first = throttle.attempt(keys, NOW)
    throttle.attempt(keys, NOW)  # both still being checked
    with pytest.raises(TooManyAttemptsError):
        throttle.attempt(keys, NOW)
    throttle.forget(first)  # it succeeded
    throttle.attempt(keys, NOW)


def test_a_limit_of_zero_and_absent_values_count_nothing() -> None:
    throttle = FailureThrottle(
        {"client": ThrottlePolicy(0, WINDOW), "address": ThrottlePolicy(1, WINDOW)}
    )
    for _ in range(5):
        throttle.attempt([("client", "id_a"), ("address", None)], NOW)


def test_memory_is_bounded_by_forgetting_the_key_that_failed_longest_ago() -> None:
    throttle = FailureThrottle({"client": ThrottlePolicy(1, WINDOW)}, max_keys=2)
    for index, name in enumerate(["id_a", "id_b", "id_c"]):
        throttle.attempt([("client", name)], NOW + timedelta(seconds=index))
    later = NOW + timedelta(seconds=10)
    for name in ("id_b", "id_c"):
        with pytest.raises(TooManyAttemptsError):
            throttle.attempt([("client", name)], later)
    throttle.attempt([("client", "id_a")], later)  # forgotten to make room for id_c


def test_long_keys_are_cut() -> None:
    throttle = FailureThrottle({"client": ThrottlePolicy(1, WINDOW)})
    throttle.attempt([("client", "x" * 1_000_000)], NOW)
    with pytest.raises(TooManyAttemptsError):
        throttle.attempt([("client", "x" * 300)], NOW)
