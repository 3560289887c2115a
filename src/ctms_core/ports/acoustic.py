"""The Acoustic port: one recipient at a time on the main table, many contacts' rows per relational
request (at most `MAX_ROWS_PER_REQUEST`, Acoustic's limit), and the errors a sync may meet.

A relational request may succeed for some rows and fail for others: Acoustic answers `SUCCESS` true with
a `FAILURE` element per refused row, naming its key columns. Those come back as `RowFailure`s, so the
caller fails only the contacts they belong to.

Every `AcousticError` is transient from the worker's point of view: it retries the contact with backoff
(docs/contract.md §9.2, "the worker never crashes on upstream trouble"). The gateway itself never retries, except that
it refreshes an expired OAuth access token once and repeats that one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal, Protocol

import msgspec

from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.domain.redaction import redact_addresses

__all__ = [
    "MAX_ROWS_PER_REQUEST",
    "TABLES",
    "AcousticAuthError",
    "AcousticCall",
    "AcousticError",
    "AcousticFault",
    "AcousticGateway",
    "AcousticMethod",
    "AcousticTable",
    "AcousticUnavailable",
    "RelationalTable",
    "RowFailure",
    "RowsReport",
    "UploadReport",
]

AcousticTable = Literal["main", "newsletter", "waitlist", "product"]
AcousticMethod = Literal[
    "add_recipient",
    "insert_update_relational_table",
    "remove_recipient",
    "delete_relational_table_data",
]
TABLES: Final[tuple[AcousticTable, ...]] = ("main", "newsletter", "waitlist", "product")
RelationalTable = Literal["newsletter", "waitlist", "product"]
#: Acoustic takes at most 100 rows in one InsertUpdateRelationalTable or DeleteRelationalTableData.
MAX_ROWS_PER_REQUEST: Final = 100


class AcousticCall(msgspec.Struct, frozen=True, kw_only=True):
    """One XML API request: the labels of the `ctms_background_acoustic_request*` metrics (docs/contract.md §11.6) and the
    `<table>_status` / `<table>_duration_s` log fields (docs/contract.md §9.4)."""

    table: AcousticTable
    method: AcousticMethod
    status: Literal["success", "failure"]
    duration_s: float


class UploadReport(msgspec.Struct, frozen=True, kw_only=True):
    """The requests that carried one contact's upload or erasure (its per-contact log line)."""

    calls: tuple[AcousticCall, ...] = ()

    def log_context(self) -> dict[str, str | float]:
        """`main_status`, `main_duration_s`, `newsletter_status`, … for the tables that were called."""
        context: dict[str, str | float] = {}
        for call in self.calls:
            context[f"{call.table}_status"] = call.status
            context[f"{call.table}_duration_s"] = round(call.duration_s, 3)
        return context


class RowFailure(msgspec.Struct, frozen=True, kw_only=True):
    """One row Acoustic refused in a relational request. `email_id` is the row's `email_id` key column
    as Acoustic named it (None when it named none: the caller then fails every contact of the request);
    `transient` is Acoustic's `failure_type="transient"`."""

    email_id: str | None
    description: str
    transient: bool = False


class RowsReport(msgspec.Struct, frozen=True, kw_only=True):
    """A relational request Acoustic answered: the request, and the rows it refused (none: all taken)."""

    call: AcousticCall
    failures: tuple[RowFailure, ...] = ()


class AcousticError(Exception):
    """Acoustic did not accept a request. Always retryable by the worker.

    `message` is Acoustic's own text (a fault string) or a description of what failed, with every e-mail
    address in it redacted (`redact_addresses`): it is logged and stored (`pending_acoustic.last_error`).
    `table` is the table of the failing request (None when no request was made);
    `calls` holds the failing request (when one was made), so metrics and logs are complete even on
    failure.
    """

    def __init__(
        self,
        message: str,
        *,
        table: AcousticTable | None = None,
        calls: tuple[AcousticCall, ...] = (),
    ) -> None:
        message = redact_addresses(message)
        super().__init__(message)
        self.message = message
        self.table = table
        self.calls = calls

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, table={self.table!r})"


class AcousticFault(AcousticError):
    """The XML API answered with a `Fault` (`fault_string`, `error_id`) or `FAILURES` elements."""

    def __init__(
        self,
        message: str,
        *,
        error_id: str | None = None,
        table: AcousticTable | None = None,
        calls: tuple[AcousticCall, ...] = (),
    ) -> None:
        super().__init__(message, table=table, calls=calls)
        self.fault_string = self.message
        self.error_id = error_id


class AcousticUnavailable(AcousticError):
    """No usable answer: timeout, connection error, HTTP 5xx, or a body that is not XML."""


class AcousticAuthError(AcousticError):
    """The OAuth refresh-token grant failed (rejected credentials or an unusable token response)."""


class AcousticGateway(Protocol):
    """Acoustic Campaign's XML API, as CTMS uses it. Every HTTP request (the OAuth token grant
    included) is made within a deployment-wide request slot (`ctms_core.ports.request_slots`)."""

    async def add_recipient(self, record: AcousticRecord) -> AcousticCall:
        """`AddRecipient` on the main table for one contact (sync field `email_id`, update if found).
        Raises an `AcousticError` whose `calls` hold the failed request."""
        ...

    async def insert_update_rows(
        self, table: RelationalTable, rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        """`InsertUpdateRelationalTable` with up to `MAX_ROWS_PER_REQUEST` rows, of any contacts. A
        refusal of the whole request raises; refused rows come back as `RowsReport.failures`."""
        ...

    async def delete_rows(
        self, table: RelationalTable, key_rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        """`DeleteRelationalTableData` with up to `MAX_ROWS_PER_REQUEST` key rows, of any contacts. A row
        Acoustic no longer has counts as deleted (a retried erasure completes)."""
        ...

    async def remove_recipient(self, deletion: AcousticDeletion) -> AcousticCall:
        """`RemoveRecipient` on the main table; a recipient already gone counts as removed."""
        ...
