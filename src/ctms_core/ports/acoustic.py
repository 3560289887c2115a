"""The Acoustic port: upload one contact's rows, erase one contact, and the errors a sync may meet.

Every `AcousticError` is transient from the worker's point of view: it retries the contact with backoff
(docs/contract.md §9.2, "the worker never crashes on upstream trouble"). The gateway itself never retries, except that
it refreshes an expired OAuth access token once and repeats that one request.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

import msgspec

from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.domain.redaction import redact_addresses

__all__ = [
    "TABLES",
    "AcousticAuthError",
    "AcousticCall",
    "AcousticError",
    "AcousticFault",
    "AcousticGateway",
    "AcousticMethod",
    "AcousticTable",
    "AcousticUnavailable",
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


class AcousticCall(msgspec.Struct, frozen=True, kw_only=True):
    """One XML API request: the labels of the `ctms_background_acoustic_request*` metrics (docs/contract.md §11.6) and the
    `<table>_status` / `<table>_duration_s` log fields (docs/contract.md §9.4)."""

    table: AcousticTable
    method: AcousticMethod
    status: Literal["success", "failure"]
    duration_s: float


class UploadReport(msgspec.Struct, frozen=True, kw_only=True):
    """The requests one upload or erasure made, in order (an upload skips tables without rows)."""

    calls: tuple[AcousticCall, ...] = ()

    def log_context(self) -> dict[str, str | float]:
        """`main_status`, `main_duration_s`, `newsletter_status`, … for the tables that were called."""
        context: dict[str, str | float] = {}
        for call in self.calls:
            context[f"{call.table}_status"] = call.status
            context[f"{call.table}_duration_s"] = round(call.duration_s, 3)
        return context


class AcousticError(Exception):
    """Acoustic did not accept a request. Always retryable by the worker.

    `message` is Acoustic's own text (a fault string) or a description of what failed, with every e-mail
    address in it redacted (`redact_addresses`): it is logged and stored (`pending_acoustic.last_error`).
    `table` is the table of the failing request (None when no request was made, e.g. OAuth failed);
    `calls` are the requests made so far in this upload or erasure, the failing one last when it reached
    Acoustic, so metrics and logs can be complete even on failure.
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
    """Acoustic Campaign's XML API, as CTMS uses it."""

    async def upload(self, record: AcousticRecord) -> UploadReport:
        """Send one contact (docs/contract.md §9.4): `AddRecipient` on the main table (sync field `email_id`, update if
        found), then `InsertUpdateRelationalTable` for the newsletter, waitlist and product rows, each
        skipped when the contact has no such rows. The first failure stops the sequence and raises an
        `AcousticError` whose `calls` include the requests made; the whole contact is resent next time.
        """
        ...

    async def erase(self, deletion: AcousticDeletion) -> UploadReport:
        """Remove one contact (docs/contract.md §9.5): `DeleteRelationalTableData` for its rows in each relational table,
        then `RemoveRecipient` on the main table. Idempotent for the recipient: one already gone counts as
        removed, so a retried erasure completes. Failures raise like `upload`.
        """
        ...
