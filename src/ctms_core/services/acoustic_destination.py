"""Acoustic as a sync destination (docs/contract.md §9, docs/acoustic.md "Batched requests"): map each
contact and send a batch of contacts through the `AcousticGateway` in as few requests as the XML API
allows.

Business rules:

* An upload is one `AddRecipient` per contact (the XML API takes one recipient per request), then its
  newsletter, waitlist and product rows, sent together with the rows of the other contacts of the
  batch in `InsertUpdateRelationalTable` requests of up to `MAX_ROWS_PER_REQUEST` rows. A table's rows
  leave as soon as 100 are gathered, while the other contacts' `AddRecipient`s go on, and the rest when
  every `AddRecipient` has answered. A contact's rows are sent only once its recipient was taken.
* An erasure deletes the relational rows of every erased contact of the batch together
  (`DeleteRelationalTableData`, up to 100 key rows a request), then removes each recipient whose rows
  are all gone (`RemoveRecipient`, one per contact).
* A contact is delivered when every request that carried it succeeded for it. A relational request
  refused as a whole is sent once more at once (it carries up to a hundred contacts, whose
  `AddRecipient`s a retry would repeat); refused again, it fails every contact it carried; a row Acoustic refused (a `FAILURE` naming the row's
  `email_id`) fails only that contact, and a `FAILURE` naming no `email_id` every contact of that
  request. A failed contact is sent whole again on its retry (every write is an upsert or a delete).
* Every failure is reported per contact, never raised: an `AcousticUnavailable` or `AcousticAuthError`
  is an `outage` (Acoustic gave no usable answer), any other `AcousticError` (and a refused row) a
  `rejected`, anything else an `error`.
* At most `concurrency` requests of one `deliver` are in flight at once; the gateway also holds a
  deployment-wide request slot around each of them.

The per-contact log lines of docs/contract.md §11.3 are written here, where the table statuses are known:
each contact's context holds its own `AddRecipient` and the batched requests that carried its rows.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ctms_core.domain.acoustic import AcousticConfiguration, AcousticRecord, map_contact
from ctms_core.domain.redaction import redact_addresses
from ctms_core.domain.sync import FailureKind, primary_email_domain
from ctms_core.ports.acoustic import (
    MAX_ROWS_PER_REQUEST,
    AcousticAuthError,
    AcousticCall,
    AcousticError,
    AcousticGateway,
    AcousticUnavailable,
    RelationalTable,
    RowsReport,
    UploadReport,
)
from ctms_core.ports.destinations import Delivery, DeliveryFailure, DeliveryReport

__all__ = ["AcousticDestination", "failure_kind"]

sync_logger = logging.getLogger("ctms.sync")
contact_logger = logging.getLogger("ctms.acoustic_service")

_RELATIONAL_TABLES: tuple[RelationalTable, ...] = ("newsletter", "waitlist", "product")


def failure_kind(error: Exception) -> FailureKind:
    """`outage` when Acoustic gave no usable answer (unreachable, 5xx, not XML, OAuth refused);
    `rejected` when it answered and refused the contact; `error` for anything else."""
    if isinstance(error, AcousticUnavailable | AcousticAuthError):
        return "outage"
    if isinstance(error, AcousticError):
        return "rejected"
    return "error"


def _ignore_call(call: AcousticCall) -> None:
    pass


@dataclass(slots=True)
class _Contact:
    """One delivery on its way: the requests that carried it, and its failure once it has one."""

    delivery: Delivery
    context: dict[str, Any]
    calls: list[AcousticCall] = field(default_factory=list)
    failure: DeliveryFailure | None = None
    logged: bool = False

    @property
    def address(self) -> str | None:
        delivery = self.delivery
        if delivery.contact is not None:
            return delivery.contact.email.primary_email
        return delivery.deletion.primary_email if delivery.deletion is not None else None


@dataclass(slots=True)
class _Batch:
    """The rows of several contacts for one relational request."""

    table: RelationalTable
    rows: list[dict[str, str]] = field(default_factory=list)
    contacts: dict[str, _Contact] = field(default_factory=dict)


class AcousticDestination:
    """The `acoustic` destination. `configuration` loads the field and newsletter configuration
    (docs/contract.md §1.4) once per `deliver`; `on_call` sees every XML API request (the
    `ctms_background_acoustic_request*` metrics); `concurrency` caps the requests of one `deliver`
    in flight at once."""

    name = "acoustic"

    def __init__(
        self,
        gateway: AcousticGateway,
        configuration: Callable[[], Awaitable[AcousticConfiguration]],
        *,
        concurrency: int = 5,
        on_call: Callable[[AcousticCall], None] = _ignore_call,
        rows_per_request: int = MAX_ROWS_PER_REQUEST,
    ) -> None:
        self._gateway = gateway
        self._configuration = configuration
        self._concurrency = concurrency
        self._on_call = on_call
        self._rows_per_request = min(rows_per_request, MAX_ROWS_PER_REQUEST)

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        """Upload and erase the contacts in batched requests; one failure per contact not taken."""
        run = _Run(self, asyncio.Semaphore(self._concurrency))
        uploads = [run.contact(d) for d in deliveries if d.deletion is None]
        erasures = [run.contact(d) for d in deliveries if d.deletion is not None]
        configuration: AcousticConfiguration | None = None
        if uploads:
            try:
                configuration = await self._configuration()
            except Exception as error:
                for contact in uploads:
                    run.fail_with_exception(contact, error)
        await asyncio.gather(
            run.upload(uploads, configuration) if configuration is not None else _nothing(),
            run.erase(erasures),
        )
        for contact in run.contacts:
            run.log(contact)
        return DeliveryReport(
            failed=tuple(c.failure for c in run.contacts if c.failure is not None),
            requests=run.requests,
        )


async def _nothing() -> None:
    return None


class _Run:
    """The state of one `deliver` call."""

    def __init__(self, destination: AcousticDestination, semaphore: asyncio.Semaphore) -> None:
        self._destination = destination
        self._gateway = destination._gateway
        self._semaphore = semaphore
        self._rows_per_request = destination._rows_per_request
        self.contacts: list[_Contact] = []
        self.requests = 0

    def contact(self, delivery: Delivery) -> _Contact:
        contact = _Contact(delivery, {"email_id": str(delivery.email_id)})
        self.contacts.append(contact)
        return contact

    # --- uploads ------------------------------------------------------------------------------------------

    async def upload(self, contacts: list[_Contact], configuration: AcousticConfiguration) -> None:
        pending: dict[RelationalTable, _Batch] = {t: _Batch(t) for t in _RELATIONAL_TABLES}
        sent: list[asyncio.Task[None]] = []

        async def one(contact: _Contact) -> None:
            record = self._record(contact, configuration)
            if record is None or not await self._add_recipient(contact, record):
                return
            for table, rows in zip(
                _RELATIONAL_TABLES,
                (record.newsletters, record.waitlists, record.products),
                strict=True,
            ):
                for row in rows:
                    batch = pending[table]
                    batch.rows.append(row)
                    batch.contacts[str(contact.delivery.email_id)] = contact
                    if len(batch.rows) >= self._rows_per_request:
                        pending[table] = _Batch(table)
                        sent.append(asyncio.create_task(self._send_rows(batch)))

        await asyncio.gather(*(one(contact) for contact in contacts))
        sent.extend(
            asyncio.create_task(self._send_rows(batch)) for batch in pending.values() if batch.rows
        )
        await asyncio.gather(*sent)

    def _record(
        self, contact: _Contact, configuration: AcousticConfiguration
    ) -> AcousticRecord | None:
        try:
            if contact.delivery.contact is None:
                raise ValueError("a delivery with neither a contact nor a deletion")
            record = map_contact(contact.delivery.contact, contact.delivery.products, configuration)
        except Exception as error:
            self.fail_with_exception(contact, error)
            return None
        contact.context.update(record.log_context())
        return record

    async def _add_recipient(self, contact: _Contact, record: AcousticRecord) -> bool:
        async with self._semaphore:
            try:
                call = await self._gateway.add_recipient(record)
            except Exception as error:
                self._failed_request(error, [contact])
                return False
        self._observe(call, [contact])
        return True

    async def _send_rows(self, batch: _Batch) -> None:
        await self._relational(batch, self._gateway.insert_update_rows)

    # --- erasures -----------------------------------------------------------------------------------------

    async def erase(self, contacts: list[_Contact]) -> None:
        batches: list[_Batch] = []
        current: dict[RelationalTable, _Batch] = {t: _Batch(t) for t in _RELATIONAL_TABLES}
        for contact in contacts:
            contact.context["operation"] = "erase"
            deletion = contact.delivery.deletion
            assert deletion is not None
            for name, key_rows in deletion.key_rows().items():
                table = cast(RelationalTable, name)
                for row in key_rows:
                    batch = current[table]
                    batch.rows.append(row)
                    batch.contacts[str(contact.delivery.email_id)] = contact
                    if len(batch.rows) >= self._rows_per_request:
                        batches.append(batch)
                        current[table] = _Batch(table)
        batches.extend(batch for batch in current.values() if batch.rows)
        await asyncio.gather(*(self._delete_rows(batch) for batch in batches))
        await asyncio.gather(
            *(self._remove_recipient(contact) for contact in contacts if contact.failure is None)
        )

    async def _delete_rows(self, batch: _Batch) -> None:
        await self._relational(batch, self._gateway.delete_rows)

    async def _relational(
        self,
        batch: _Batch,
        request: Callable[[RelationalTable, Sequence[Mapping[str, str]]], Awaitable[RowsReport]],
    ) -> None:
        """One relational request, sent a second time when Acoustic refused it as a whole."""
        for attempt in (1, 2):
            async with self._semaphore:
                try:
                    report = await request(batch.table, batch.rows)
                except AcousticError as error:
                    if attempt == 1:
                        self._observe_failed(error)
                        continue
                    self._failed_request(error, batch.contacts.values())
                    return
                except Exception as error:
                    self._failed_request(error, batch.contacts.values())
                    return
            self._rows_answered(report, batch)
            return

    async def _remove_recipient(self, contact: _Contact) -> None:
        deletion = contact.delivery.deletion
        assert deletion is not None
        async with self._semaphore:
            try:
                call = await self._gateway.remove_recipient(deletion)
            except Exception as error:
                self._failed_request(error, [contact])
                return
        self._observe(call, [contact])

    # --- outcomes -----------------------------------------------------------------------------------------

    def _observe(self, call: AcousticCall, contacts: Iterable[_Contact]) -> None:
        self.requests += 1
        self._destination._on_call(call)
        for contact in contacts:
            contact.calls.append(call)

    def _rows_answered(self, report: RowsReport, batch: _Batch) -> None:
        self._observe(report.call, batch.contacts.values())
        for failure in report.failures:
            refused = (
                [batch.contacts[failure.email_id]]
                if failure.email_id in batch.contacts
                else batch.contacts.values()
            )
            description = redact_addresses(
                f"AcousticFault({failure.description!r}, table={batch.table!r})"
            )
            for contact in refused:
                self._fail(contact, "rejected", description)

    def _observe_failed(self, error: AcousticError) -> None:
        self.requests += len(error.calls)
        for call in error.calls:
            self._destination._on_call(call)

    def _failed_request(self, error: Exception, contacts: Iterable[_Contact]) -> None:
        if isinstance(error, AcousticError):
            self._observe_failed(error)
            description = redact_addresses(repr(error))
            for contact in contacts:
                contact.calls.extend(error.calls)
                self._fail(contact, failure_kind(error), description)
        else:
            for contact in contacts:
                self.fail_with_exception(contact, error)

    def _fail(self, contact: _Contact, kind: FailureKind, description: str) -> None:
        if contact.failure is not None:
            return  # the first failure of a contact is the one reported
        contact.failure = DeliveryFailure(
            email_id=contact.delivery.email_id, kind=kind, reason=description
        )
        sync_logger.error(
            "Could not upload contact: %s",
            description,
            extra={
                "email_id": str(contact.delivery.email_id),
                "primary_email_domain": primary_email_domain(contact.address),
            },
        )

    def fail_with_exception(self, contact: _Contact, error: Exception) -> None:
        """Not an answer of Acoustic: a bug or bad data. Not `logger.exception`: the traceback ends
        with the exception's message, which may quote the address; it is logged redacted."""
        if contact.failure is not None:
            return
        description = redact_addresses(repr(error))
        contact.failure = DeliveryFailure(
            email_id=contact.delivery.email_id, kind=failure_kind(error), reason=description
        )
        contact.logged = True  # no per-contact sync line: this is not a sync outcome
        sync_logger.error(
            "Exception occurred when processing acoustic record: %s",
            description,
            extra={
                "email_id": str(contact.delivery.email_id),
                "primary_email_domain": primary_email_domain(contact.address),
                "traceback": redact_addresses("".join(traceback.format_exception(error))),
            },
        )

    def log(self, contact: _Contact) -> None:
        if contact.logged:
            return
        context = {**contact.context, **UploadReport(calls=tuple(contact.calls)).log_context()}
        if contact.failure is None:
            contact_logger.debug(
                "Successfully sync'd contact to acoustic...", extra={**context, "success": True}
            )
        else:
            contact_logger.error(
                "Failure for contact in sync to acoustic...", extra={**context, "success": False}
            )
