"""The real clock and id source."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIdGenerator:
    def new_email_id(self) -> uuid.UUID:
        return uuid.uuid4()
