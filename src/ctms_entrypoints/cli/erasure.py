"""`ctms delete-bulk` and `ctms audit erasures`: erasing contacts, and their audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import click

from ctms_core.domain.contact import Identity
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.errors import CoreError, EmailNotFoundError
from ctms_entrypoints.cli.context import (
    CliContext,
    confirm,
    pass_ctms,
)
from ctms_entrypoints.container import Container

PROGRESS_EVERY = 100


def _addresses(emails: Iterable[str], email_file: Path | None) -> list[str]:
    """File lines (right-stripped, blank lines skipped), then `--email` values (docs/contract.md §13.2)."""
    addresses: list[str] = []
    if email_file is not None:
        with email_file.open(encoding="utf-8") as lines:
            addresses.extend(line.rstrip() for line in lines if line.strip())
    addresses.extend(emails)
    return addresses


def _deleted_line(address: str, identity: Identity) -> str:
    line = f"DELETING {address} (ctms id: {identity.email_id})."
    if identity.fxa_id:
        line += " fxa: YES."
    if identity.mofo_contact_id:
        line += " mofo: YES."
    return line


@click.command("delete-bulk")
@click.option("--email", "emails", multiple=True, help="An address to erase (repeatable).")
@click.option(
    "--email-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of addresses to erase, one per line.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctms
def delete_bulk(
    ctms: CliContext, emails: tuple[str, ...], email_file: Path | None, yes: bool
) -> None:
    """Erase contacts by primary e-mail, as DELETE /ctms/{primary_email} does (with an audit record
    per erased contact). Exits 0 whatever was found."""
    addresses = _addresses(emails, email_file)
    if not addresses:
        raise click.UsageError("Give --email and/or --email-file.")
    if not confirm(f"Erase the contacts of {len(addresses)} address(es)?", yes):
        return

    async def work(container: Container) -> tuple[int, int]:
        service = container.contact_service()
        deleted = missing = 0
        for number, address in enumerate(addresses, start=1):
            try:
                identities = await service.delete(address)
            except EmailNotFoundError:
                missing += 1
                click.echo(f"{address} not found in CTMS")
            except CoreError as error:
                click.echo(f"{address}: {error.detail}", err=True)
            else:
                deleted += len(identities)
                for identity in identities:
                    click.echo(_deleted_line(address, identity))
            if number % PROGRESS_EVERY == 0 and number < len(addresses):
                click.echo(f"... {number} of {len(addresses)} addresses done", err=True)
        return deleted, missing

    deleted, missing = ctms.admin(work)
    click.echo(f"Deleted {deleted} contacts; {missing} addresses not found.")


@click.group()
def audit() -> None:
    """Audit trails."""


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO 8601 date or time, got {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@audit.command("erasures")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option(
    "--since",
    callback=_since,
    help="Only erasures at or after this ISO 8601 time (UTC unless it says).",
)
@click.option("--email", default=None, help="Only erasures of this address (compared by hash).")
@pass_ctms
def audit_erasures(
    ctms: CliContext, as_json: bool, since: datetime | None, email: str | None
) -> None:
    """List erased contacts: when, by which API client, email_id, the salted address hash, and whether
    the erasure's address was dropped before it reached Acoustic."""

    async def work(container: Container) -> list[ErasureRecord]:
        return await container.erasure_audit_service().list(since=since, primary_email=email)

    records = ctms.admin(work)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "erased_at": record.erased_at.isoformat(),
                        "client_id": record.client_id,
                        "email_id": str(record.email_id),
                        "email_hash": record.email_hash,
                        "acoustic": _erasure_delivery(record),
                        "address_dropped_at": None
                        if record.address_dropped_at is None
                        else record.address_dropped_at.isoformat(),
                    }
                    for record in records
                ]
            )
        )
        return
    if not records:
        click.echo("No erasures found.")
        return
    click.echo("Erasures:")
    for record in records:
        click.echo(
            f"- {record.erased_at.isoformat()} by {record.client_id or '(command line)'}: "
            f"email_id {record.email_id}, email_hash {record.email_hash}; "
            f"Acoustic: {_erasure_delivery(record)}"
        )


def _erasure_delivery(record: ErasureRecord) -> str:
    """What became of the erasure's delivery to Acoustic, as far as the trail knows."""
    if record.address_dropped_at is None:
        return "delivered or queued"
    waited = record.address_dropped_at - record.erased_at
    return f"address dropped after {waited}, not delivered"
