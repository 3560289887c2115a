"""`ctms sync` and `ctms acoustic …` (docs/contract.md §13.3, §13.4:
addresses match ignoring case, commands exit non-zero on failure, `fields list -t` filters)."""

from __future__ import annotations

import asyncio
import csv
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from ctms_core.domain.redaction import redact_addresses
from ctms_core.ports.acoustic_resync import ContactSelection
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.acoustic_resync import AcousticResyncService
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.cli.context import EXIT_NOT_FOUND, CliContext, confirm, pass_ctms
from ctms_entrypoints.container import (
    Container,
    MissingConfigurationError,
    build_container,
    dispose,
    release_request_slots,
)
from ctms_entrypoints.http.app import load_version_document
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.loop import SyncWorker
from ctms_entrypoints.worker.metrics import BackgroundMetrics

# sysexits' EX_UNAVAILABLE: v3.3's exit status when a dump selects no contact.
EXIT_NO_CONTACT = 69
worker_logger = logging.getLogger("ctms.bin.acoustic_sync")

T = TypeVar("T")


def _admin_service(ctms: CliContext, work: Callable[[AcousticAdminService], Awaitable[T]]) -> T:
    """`ctms.admin` with the Acoustic administration service."""

    async def run(container: Container) -> T:
        return await work(container.acoustic_admin_service())

    return ctms.admin(run)


@click.command("sync")
@pass_ctms
def sync(ctms: CliContext) -> None:
    """Run the sync worker (every destination of CTMS_SYNC_DESTINATIONS) until SIGTERM/SIGINT (the contacts in flight are finished). A
    CTMS_DB_URL database must have been upgraded first (`ctms db upgrade`)."""
    settings = ctms.settings()
    ctms.set_up_observability(settings, load_version_document(settings))
    with ctms.database(settings) as runtime:
        try:
            code = asyncio.run(run_worker(build_container(runtime.settings)))
        except MissingConfigurationError as error:
            click.echo(str(error), err=True)
            sys.exit(1)
    sys.exit(code)


async def run_worker(container: Container, stop: asyncio.Event | None = None) -> int:
    """Run `container`'s sync worker until SIGTERM/SIGINT (or `stop`); the pass in progress finishes
    first. The container is disposed on the way out."""
    settings: Settings = container.settings()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker_logger.info(
        "Setting up sync_service.",
        extra={
            "sync_feature_flag": settings.acoustic_sync_feature_flag,
            "destinations": list(settings.sync_destination_names),
        },
    )
    if not settings.acoustic_sync_feature_flag:
        # docs/contract.md §9.2: with the flag off the loop does not run; stay alive (and healthy) until stopped
        # rather than exit, so a supervisor does not restart the process forever.
        worker_logger.info("CTMS_ACOUSTIC_SYNC_FEATURE_FLAG is false: not syncing.")
    metrics: BackgroundMetrics = container.worker_metrics()
    if settings.background_metrics_port:
        metrics.serve(settings.background_metrics_port)
    try:
        worker: SyncWorker = await resolved(container.sync_worker)
        await worker.run(stop)
    finally:
        await release_request_slots(container)
        await dispose(container)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    worker_logger.info("Sync worker stopped.")
    return 0


@click.group("acoustic")
def acoustic() -> None:
    """The Acoustic sync: fields, newsletter mappings, resync, failed contacts."""


@acoustic.group("fields")
def fields() -> None:
    """Main-table columns (`main`) and waitlist `fields` keys (`waitlist`) to send."""


@fields.command("list")
@click.option("--table", "-t", default=None, help="Only this table (main or waitlist).")
@pass_ctms
def fields_list(ctms: CliContext, table: str | None) -> None:
    async def work(service: AcousticAdminService) -> list[tuple[str, str]]:
        return await service.fields()

    for tablename, field in _admin_service(ctms, work):
        if table is None or tablename == table:
            click.echo(f"- {tablename}.{field}")


@fields.command("add")
@click.option("--table", "-t", default="main", show_default=True)
@click.argument("field")
@pass_ctms
def fields_add(ctms: CliContext, table: str, field: str) -> None:
    async def work(service: AcousticAdminService) -> None:
        await service.add_field(table, field)

    _admin_service(ctms, work)
    click.echo(f"Added '{table}.{field}'.")


@fields.command("remove")
@click.option("--table", "-t", default="main", show_default=True)
@click.argument("field")
@pass_ctms
def fields_remove(ctms: CliContext, table: str, field: str) -> None:
    async def work(service: AcousticAdminService) -> bool:
        return await service.remove_field(table, field)

    if not _admin_service(ctms, work):
        click.echo(f"Unknown field '{table}.{field}'. Give up.", err=True)
        sys.exit(EXIT_NOT_FOUND)
    click.echo(f"Removed '{table}.{field}'.")


@acoustic.group("newsletters")
def newsletters() -> None:
    """Newsletter slug → boolean column of the Acoustic main table."""


@newsletters.command("list")
@pass_ctms
def newsletters_list(ctms: CliContext) -> None:
    async def work(service: AcousticAdminService) -> list[tuple[str, str]]:
        return await service.newsletter_mappings()

    for source, destination in _admin_service(ctms, work):
        click.echo(f"- '{source}' → '{destination}'")


@newsletters.command("add")
@click.argument("mapping", metavar="SOURCE:DESTINATION")
@pass_ctms
def newsletters_add(ctms: CliContext, mapping: str) -> None:
    source, colon, destination = mapping.partition(":")
    if not colon or not source or not destination:
        raise click.BadParameter("expected SOURCE:DESTINATION", param_hint="MAPPING")

    async def work(service: AcousticAdminService) -> None:
        await service.add_newsletter_mapping(source, destination)

    _admin_service(ctms, work)
    click.echo(f"Added '{source}' → '{destination}'.")


@newsletters.command("remove")
@click.argument("source")
@pass_ctms
def newsletters_remove(ctms: CliContext, source: str) -> None:
    async def work(service: AcousticAdminService) -> str | None:
        return await service.remove_newsletter_mapping(source)

    destination = _admin_service(ctms, work)
    if destination is None:
        click.echo(f"Unknown mapping '{source}'. Give up.", err=True)
        sys.exit(EXIT_NOT_FOUND)
    click.echo(f"Removed '{source}' → '{destination}'.")


@acoustic.command("resync")
@click.option(
    "--email-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Primary e-mails to sync again, one per line (matched ignoring case).",
)
@click.option("--all-failed", is_flag=True, help="Every contact the Acoustic sync gave up.")
@click.option("--newsletter", help="Every contact subscribed to this newsletter (its slug).")
@click.option("--waitlist", help="Every contact on this waitlist, subscribed or not.")
@click.option(
    "--reset-retries",
    is_flag=True,
    help="Give every queued contact with a counted retry its retries back.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctms
def resync(
    ctms: CliContext,
    email_file: Path | None,
    all_failed: bool,
    newsletter: str | None,
    waitlist: str | None,
    reset_retries: bool,
    yes: bool,
) -> None:
    """Queue contacts for sync again, resetting their retries. The bulk selections (--newsletter,
    --waitlist, --reset-retries) ask for confirmation first, unless -y."""
    if not (email_file or all_failed or newsletter or waitlist or reset_retries):
        raise click.UsageError(
            "Give at least one of --email-file, --all-failed, --newsletter, --waitlist and "
            "--reset-retries."
        )
    lines = [] if email_file is None else email_file.read_text(encoding="utf-8").splitlines()
    bulk = newsletter is not None or waitlist is not None or reset_retries

    async def work(container: Container) -> tuple[int, tuple[str, ...], bool]:
        admin: AcousticAdminService = container.acoustic_admin_service()
        bulk_service: AcousticResyncService = container.acoustic_resync_service()
        selection = ContactSelection(newsletter=newsletter, waitlist=waitlist)
        selecting = newsletter is not None or waitlist is not None
        selected = await bulk_service.size(selection) if selecting else 0
        if bulk:
            retrying = " and reset the retries of the queued contacts" if reset_retries else ""
            question = f"Force resync of {selected} contacts{retrying}. Continue?"
            if not await asyncio.to_thread(confirm, question, yes):
                return 0, (), False
        queued = 0
        unknown: tuple[str, ...] = ()
        if reset_retries:
            click.echo(f"Reset the retries of {await bulk_service.reset_retries()} contacts.")
        if selecting:
            async for page in bulk_service.pages(selection):
                queued += await bulk_service.queue(page)
                click.echo(f"Queued {queued} of {selected} contacts…", err=True)
        if all_failed:
            queued += await admin.resync_failed()
        if lines:
            result = await admin.resync_emails(lines)
            queued, unknown = queued + result.queued, result.unknown
        return queued, unknown, True

    queued, unknown, confirmed = ctms.admin(work)
    if not confirmed:
        return
    for address in unknown:
        click.echo(f"{address} not found in CTMS", err=True)
    click.echo(f"Queued {queued} contacts for sync.")


@acoustic.command("dump")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where to write the CSV (default: standard output).",
)
@click.option("--newsletter", help="Only the contacts subscribed to this newsletter.")
@click.option("--waitlist", help="Only the contacts on this waitlist.")
@click.option(
    "--configuration",
    is_flag=True,
    help="Write the field and newsletter configuration instead of contacts.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctms
def dump(
    ctms: CliContext,
    output: TextIO,
    newsletter: str | None,
    waitlist: str | None,
    configuration: bool,
    yes: bool,
) -> None:
    """Write contacts as CSV, each as the Acoustic main-table row the sync would send with the
    current field and newsletter configuration (every contact unless --newsletter/--waitlist); or,
    with --configuration, that configuration itself (`kind,table_or_source,field_or_column`)."""

    async def work(container: Container) -> int:
        if configuration:
            admin: AcousticAdminService = container.acoustic_admin_service()
            writer = csv.writer(output, lineterminator="\n")
            writer.writerow(["kind", "table_or_source", "field_or_column"])
            for table, field in await admin.fields():
                writer.writerow(["field", table, field])
            for source, destination in await admin.newsletter_mappings():
                writer.writerow(["newsletter_mapping", source, destination])
            return 0
        service: AcousticResyncService = container.acoustic_resync_service()
        selection = ContactSelection(newsletter=newsletter, waitlist=waitlist)
        selected = await service.size(selection)
        if not selected:
            click.echo("No contact found for query.", err=True)
            return EXIT_NO_CONTACT
        question = f"Dump CSV for {selected} contacts?"
        if not await asyncio.to_thread(confirm, question, yes):
            return 0
        async for text in service.dump(selection):
            output.write(text)
        return 0

    code = ctms.admin(work)
    if code:
        sys.exit(code)


@acoustic.command("failed")
@pass_ctms
def failed(ctms: CliContext) -> None:
    """Contacts the Acoustic sync gave up (docs/acoustic.md, "Retries and giving up"), with their last
    error, then how long the oldest erasure not yet delivered has waited, for each enabled
    destination (erasures are never given up)."""
    destinations = ctms.settings().sync_destination_names

    async def work(service: AcousticAdminService) -> Any:
        return await service.failed(), [
            (name, (await service.backlog(name)).oldest_erasure_at) for name in destinations
        ]

    items, erasures = _admin_service(ctms, work)
    if not items:
        click.echo("No contact past the retry limit.")
    for item in items:
        # Redacted again: rows stored before errors were redacted at the source may quote addresses.
        last_error = redact_addresses(item.last_error)
        click.echo(f"- {item.email_id} ({item.operation}, {item.retry} tries): {last_error}")
    now = datetime.now(UTC)
    for name, oldest in erasures:
        if oldest is not None:
            waited = (now - oldest).total_seconds()
            click.echo(f"Oldest erasure waiting for {name}: queued {waited:.0f} s ago ({oldest}).")
