"""Deterministic time and id sources for tests and examples."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


class ManualClock:
    """A clock that moves only when told to (or by `step` on every reading)."""

    def __init__(self, start: datetime | None = None, *, step: timedelta = timedelta(0)) -> None:
        self._now = start or datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
        self._step = step

    def now(self) -> datetime:
        current = self._now
        self._now += self._step
        return current

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment


class SequentialIdGenerator:
    """Version-4-shaped UUIDs numbered 1, 2, 3..., so ids in test output are predictable."""

    def __init__(self) -> None:
        self._counter = 0

    def new_email_id(self) -> uuid.UUID:
        self._counter += 1
        return uuid.UUID(f"00000000-0000-4000-8000-{self._counter:012x}")
