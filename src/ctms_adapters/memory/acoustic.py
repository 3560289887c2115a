"""An `AcousticGateway` that records what it is sent, for tests and embedding (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.ports.acoustic import (
    AcousticCall,
    AcousticError,
    AcousticMethod,
    AcousticTable,
    UploadReport,
)


class RecordingAcousticGateway:
    """Keeps every upload and erasure; `fail_next` makes the next calls raise; `delay` seconds per
    call; `on_call` runs inside each call (tests use it to edit a contact during its upload)."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.uploads: list[AcousticRecord] = []
        self.erasures: list[AcousticDeletion] = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_call: Callable[[], Awaitable[None]] | None = None
        self._failures: list[Exception] = []

    def fail_next(self, error: Exception | None = None, times: int = 1) -> None:
        self._failures.extend([error or AcousticError("scripted failure", table="main")] * times)

    async def _call(self, table: AcousticTable, method: AcousticMethod) -> AcousticCall:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.on_call is not None:
                await self.on_call()
            if self._failures:
                raise self._failures.pop(0)
        finally:
            self.in_flight -= 1
        return AcousticCall(table=table, method=method, status="success", duration_s=self.delay)

    async def upload(self, record: AcousticRecord) -> UploadReport:
        calls = [await self._call("main", "add_recipient")]
        for table, rows in (
            ("newsletter", record.newsletters),
            ("waitlist", record.waitlists),
            ("product", record.products),
        ):
            if rows:
                calls.append(await self._call(table, "insert_update_relational_table"))  # type: ignore[arg-type]
        self.uploads.append(record)
        return UploadReport(calls=tuple(calls))

    async def erase(self, deletion: AcousticDeletion) -> UploadReport:
        call = await self._call("main", "remove_recipient")
        self.erasures.append(deletion)
        return UploadReport(calls=(call,))
