"""The sync loops (docs/contract.md §9.2), one per enabled destination: passes paced by
`CTMS_ACOUSTIC_LOOP_MIN_SECS`, a healthcheck file per destination touched after each pass, metrics recorded and pushed, and a graceful stop that lets the pass in progress finish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ctms_core.domain.sync import SyncPassStats
from ctms_core.services.sync import SyncService
from ctms_entrypoints.worker.healthcheck_file import healthcheck_path_for, write_healthcheck
from ctms_entrypoints.worker.metrics import BackgroundMetrics

logger = logging.getLogger("ctms.bin.acoustic_sync")


def sleep_after(pass_duration: float, stats: SyncPassStats, loop_min_secs: float) -> float:
    """No sleep after a full batch; else what remains of `loop_min_secs` (docs/contract.md §9.2)."""
    if stats.count_total >= stats.batch_limit:
        return 0.0
    return max(0.0, loop_min_secs - pass_duration)


class SyncWorker:
    """The `ctms sync` process: one loop per enabled destination, each with `batches_in_flight` lanes
    that claim and deliver batches independently, so a destination's next batch is claimed while the
    previous one is still being delivered (claims never overlap: rows are leased)."""

    def __init__(
        self,
        services: Sequence[SyncService],
        metrics: BackgroundMetrics,
        *,
        loop_min_secs: float,
        healthcheck_path: Path | None = None,
        pushgateway_url: str | None = None,
        batches_in_flight: int = 1,
    ) -> None:
        self.services = tuple(services)
        self.metrics = metrics
        self.loop_min_secs = loop_min_secs
        self.healthcheck_path = healthcheck_path
        self.pushgateway_url = pushgateway_url
        self.batches_in_flight = batches_in_flight
        self.passes = 0

    @property
    def service(self) -> SyncService:
        """The first destination's service (the only one in a single-destination deployment)."""
        return self.services[0]

    async def run(self, stop: asyncio.Event) -> None:
        """Run every destination's lanes until `stop` is set; the passes in progress always complete.
        Never raises on upstream or database trouble: a failed pass is logged and the loop goes on."""
        async with asyncio.TaskGroup() as lanes:
            for service in self.services:
                write_healthcheck(healthcheck_path_for(self.healthcheck_path, service.name))
                for _ in range(self.batches_in_flight):
                    lanes.create_task(self._lane(service, stop))

    async def _lane(self, service: SyncService, stop: asyncio.Event) -> None:
        healthcheck = healthcheck_path_for(self.healthcheck_path, service.name)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                stats = await service.run_pass()
            except Exception:
                logger.exception(
                    "Sync pass failed; retrying after the loop delay.",
                    extra={"destination": service.name},
                )
                stats = SyncPassStats(
                    destination=service.name,
                    batch_limit=service.policy.batch_limit,
                    retry_limit=service.policy.retry_limit,
                    end_time=datetime.now(UTC).isoformat(),
                )
            duration = time.perf_counter() - started
            self.passes += 1
            self.metrics.record_pass(stats, duration)
            if self.pushgateway_url:
                await asyncio.to_thread(self.metrics.push, self.pushgateway_url)
            try:
                write_healthcheck(healthcheck)
            except OSError:
                logger.exception("Could not write the healthcheck file.")
            sleep = sleep_after(duration, stats, self.loop_min_secs)
            logger.info(
                "sync_service cycle complete",
                extra={
                    **stats.log_context(),
                    "loop_duration_s": round(duration, 3),
                    "loop_sleep_s": round(sleep, 3),
                },
            )
            if sleep > 0:
                try:
                    async with asyncio.timeout(sleep):
                        await stop.wait()
                except TimeoutError:
                    pass
