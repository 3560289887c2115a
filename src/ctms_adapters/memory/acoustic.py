"""An `AcousticGateway` that records what it is sent, for tests and embedding (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.ports.acoustic import (
    AcousticCall,
    AcousticError,
    AcousticMethod,
    AcousticTable,
    RelationalTable,
    RowFailure,
    RowsReport,
)


class RecordingAcousticGateway:
    """Keeps what every request took; `fail_next` makes the next calls raise; `refuse_rows_of` makes
    relational requests refuse the rows of those `email_id`s (a `FAILURE` per row); `delay` seconds per
    call; `on_call` runs inside each call (tests use it to edit a contact during its upload).

    `recipients` (email_id → main-table row), `rows` (table → rows taken) and `removed` (email_ids)
    hold what the requests took; `requests` counts (method, table, rows) of every request made."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.recipients: dict[str, dict[str, str]] = {}
        self.rows: dict[RelationalTable, list[dict[str, str]]] = {}
        self.removed: list[str] = []
        self.requests: list[tuple[AcousticMethod, AcousticTable, int]] = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_call: Callable[[], Awaitable[None]] | None = None
        self.refused_rows: set[str] = set()
        self._failures: list[Exception] = []

    def fail_next(self, error: Exception | None = None, times: int = 1) -> None:
        self._failures.extend([error or AcousticError("scripted failure", table="main")] * times)

    def refuse_rows_of(self, *email_ids: str) -> None:
        self.refused_rows.update(email_ids)

    async def _call(
        self, table: AcousticTable, method: AcousticMethod, rows: int = 1
    ) -> AcousticCall:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.requests.append((method, table, rows))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.on_call is not None:
                await self.on_call()
            if self._failures:
                error = self._failures.pop(0)
                if isinstance(error, AcousticError):
                    error.calls = (
                        AcousticCall(
                            table=table, method=method, status="failure", duration_s=self.delay
                        ),
                    )
                raise error
        finally:
            self.in_flight -= 1
        return AcousticCall(table=table, method=method, status="success", duration_s=self.delay)

    # --- one request each ---------------------------------------------------------------------------------

    async def add_recipient(self, record: AcousticRecord) -> AcousticCall:
        call = await self._call("main", "add_recipient")
        self.recipients[str(record.email_id)] = dict(record.main)
        return call

    async def insert_update_rows(
        self, table: RelationalTable, rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        call = await self._call(table, "insert_update_relational_table", len(rows))
        return self._rows_taken(table, rows, call)

    async def delete_rows(
        self, table: RelationalTable, key_rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        call = await self._call(table, "delete_relational_table_data", len(key_rows))
        refused = self._refused(key_rows)
        kept = self.rows.get(table, [])
        for key in key_rows:
            if key.get("email_id") not in self.refused_rows:
                kept = [row for row in kept if any(row.get(n) != v for n, v in key.items())]
        self.rows[table] = kept
        return RowsReport(call=call, failures=refused)

    async def remove_recipient(self, deletion: AcousticDeletion) -> AcousticCall:
        call = await self._call("main", "remove_recipient")
        self.recipients.pop(str(deletion.email_id), None)
        self.removed.append(str(deletion.email_id))
        return call

    def _rows_taken(
        self, table: RelationalTable, rows: Sequence[Mapping[str, str]], call: AcousticCall
    ) -> RowsReport:
        refused = self._refused(rows)
        self.rows.setdefault(table, []).extend(
            dict(row) for row in rows if row.get("email_id") not in self.refused_rows
        )
        return RowsReport(call=call, failures=refused)

    def _refused(self, rows: Sequence[Mapping[str, str]]) -> tuple[RowFailure, ...]:
        return tuple(
            RowFailure(email_id=row["email_id"], description="Invalid value", transient=False)
            for row in rows
            if row.get("email_id") in self.refused_rows
        )
