"""The sync parts of `/__heartbeat__` (docs/contract.md §10): each destination's backlog against its limits
(the `acoustic` block of v3.3, and one block per other enabled destination, e.g. `braze`)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_entrypoints.settings import Settings

logger = logging.getLogger("ctms.crud")


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class AcousticHeartbeat:
    """Counts one destination's backlog (every contact not yet delivered, retrying ones included) and
    retry backlog; fails past `CTMS_ACOUSTIC_MAX_BACKLOG` / `CTMS_ACOUSTIC_MAX_RETRY_BACKLOG` (each only
    when set, the same limits for every destination) or when the counts cannot be read."""

    def __init__(
        self,
        service: AcousticAdminService,
        settings: Settings,
        timeout: float,
        destination: str = "acoustic",
    ) -> None:
        self._service = service
        self._settings = settings
        self._timeout = timeout
        self.destination = destination

    async def check(self) -> dict[str, Any]:
        settings = self._settings
        started = time.perf_counter()
        backlog: int | None = None
        retry_backlog: int | None = None
        try:
            async with asyncio.timeout(self._timeout):
                counts = await self._service.backlog(self.destination)
        except Exception:
            logger.exception(
                "Could not count the sync backlog.", extra={"destination": self.destination}
            )
            success = False
        else:
            backlog, retry_backlog = counts.backlog, counts.retry_backlog
            max_backlog, max_retry = (
                settings.acoustic_max_backlog,
                settings.acoustic_max_retry_backlog,
            )
            success = (max_backlog is None or backlog <= max_backlog) and (
                max_retry is None or retry_backlog <= max_retry
            )
        return {
            "success": success,
            "time_ms": round((time.perf_counter() - started) * 1000),
            "backlog": backlog,
            "max_backlog": settings.acoustic_max_backlog,
            "retry_backlog": retry_backlog,
            "max_retry_backlog": settings.acoustic_max_retry_backlog,
            "retry_limit": settings.acoustic_retry_limit,
            "batch_limit": settings.acoustic_batch_limit,
            "loop_min_sec": _seconds(settings.acoustic_loop_min_secs),
        }
