"""Time and identity sources, injected so that use cases are deterministic under test."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class IdGenerator(Protocol):
    def new_email_id(self) -> uuid.UUID:
        """A fresh random (version 4) contact id."""
        ...
