"""`ctms braze newsletters|waitlists list|add NAME GROUP_ID|remove NAME`: which Braze subscription group
each newsletter and waitlist stands for; `ctms braze resync`: contacts sent to Braze again, in full
(docs/braze.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from ctms_adapters.postgres import PostgresBrazeSubscriptionGroupRepository
from ctms_core.domain.braze import SubscriptionGroupKind
from ctms_core.ports.acoustic_resync import ContactSelection
from ctms_core.services.acoustic_resync import AcousticResyncService
from ctms_core.services.braze_admin import BrazeAdminService
from ctms_core.services.braze_resync import BrazeResyncService
from ctms_entrypoints.cli.context import CliContext, confirm, pass_ctms
from ctms_entrypoints.container import Container, MissingConfigurationError

T = TypeVar("T")

_EFFECT = "The sync worker applies it to the next contacts it sends to Braze."


def _admin_service(ctms: CliContext, work: Callable[[BrazeAdminService], Awaitable[T]]) -> T:
    """`ctms.admin` with the Braze administration service on the container's database."""

    async def run(container: Container) -> T:
        engine = container.engine()
        if engine is None:
            raise MissingConfigurationError("The Braze mappings are kept in PostgreSQL")
        return await work(BrazeAdminService(PostgresBrazeSubscriptionGroupRepository(engine)))

    return ctms.admin(run)


@click.group("braze")
def braze() -> None:
    """Braze, the second sync destination."""


def _mapping_group(kind: SubscriptionGroupKind, plural: str) -> click.Group:
    """`ctms braze <plural> list|add|remove` for the names of one kind."""

    @click.group(plural)
    def group() -> None:
        pass

    group.help = (
        f"{kind.capitalize()} name → Braze subscription group id. A contact's {plural} with a group "
        "are sent as that group's subscribed/unsubscribed state."
    )

    @group.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
    @pass_ctms
    def list_(ctms: CliContext, as_json: bool) -> None:
        """List the mapped names, by name."""

        async def work(service: BrazeAdminService) -> list[tuple[str, str]]:
            return await service.subscription_groups(kind)

        listed = _admin_service(ctms, work)
        if as_json:
            click.echo(json.dumps([{"name": n, "group_id": g} for n, g in listed]))
            return
        if not listed:
            click.echo(f"No {kind} is mapped to a Braze subscription group.")
            return
        header = (kind.upper(), "SUBSCRIPTION GROUP")
        width = max(len(row[0]) for row in (header, *listed))
        for name, group_id in (header, *listed):
            click.echo(f"{name.ljust(width)}  {group_id}")

    @group.command("add")
    @click.argument("name")
    @click.argument("group_id")
    @pass_ctms
    def add(ctms: CliContext, name: str, group_id: str) -> None:
        """Map NAME to the subscription group GROUP_ID (replacing the group it had)."""

        async def work(service: BrazeAdminService) -> tuple[str, str]:
            return await service.map(kind, name, group_id)

        mapped_name, mapped_group = _admin_service(ctms, work)
        click.echo(f"Mapped {kind} '{mapped_name}' → '{mapped_group}'. {_EFFECT}")

    @group.command("remove")
    @click.argument("name")
    @pass_ctms
    def remove(ctms: CliContext, name: str) -> None:
        """Unmap NAME: it is no longer sent as a subscription group."""

        async def work(service: BrazeAdminService) -> str:
            return await service.unmap(kind, name)

        removed = _admin_service(ctms, work)
        click.echo(f"Removed {kind} '{name.strip()}' → '{removed}'. {_EFFECT}")

    return group


braze.add_command(_mapping_group("newsletter", "newsletters"))
braze.add_command(_mapping_group("waitlist", "waitlists"))


@braze.command("resync")
@click.option(
    "--email-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Primary e-mails to send again, one per line (matched ignoring case).",
)
@click.option("--newsletter", help="Every contact subscribed to this newsletter (its slug).")
@click.option("--waitlist", help="Every contact on this waitlist, subscribed or not.")
@click.option(
    "--all", "every_contact", is_flag=True, help="Every contact: the backfill of a migration."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_ctms
def resync(
    ctms: CliContext,
    email_file: Path | None,
    newsletter: str | None,
    waitlist: str | None,
    every_contact: bool,
    yes: bool,
) -> None:
    """Send contacts to Braze again, in full, and to no other destination. The bulk selections
    (--newsletter, --waitlist, --all) ask for confirmation first, unless -y."""
    if not (email_file or newsletter or waitlist or every_contact):
        raise click.UsageError(
            "Give at least one of --email-file, --newsletter, --waitlist and --all."
        )
    lines = [] if email_file is None else email_file.read_text(encoding="utf-8").splitlines()

    async def work(container: Container) -> tuple[int, list[str], bool]:
        if container.engine() is None:
            raise MissingConfigurationError("The Braze digests are kept in PostgreSQL")
        service: BrazeResyncService = container.braze_resync_service()
        selections: AcousticResyncService = container.acoustic_resync_service()
        # --all is every contact, whatever else is given; no selection option means only the file.
        selection = ContactSelection(
            newsletter=None if every_contact else newsletter,
            waitlist=None if every_contact else waitlist,
        )
        selecting = every_contact or newsletter is not None or waitlist is not None
        if selecting:
            size = None if every_contact else await selections.size(selection)
            whom = "every contact" if size is None else f"{size} contacts"
            question = f"Send {whom} to Braze again, in full. Continue?"
            if not await asyncio.to_thread(confirm, question, yes):
                return 0, [], False
        found, unknown = await service.contacts_of(lines)
        scheduled = await service.resync(found)
        if selecting:
            from_file = set(found)  # scheduled already, and counted once
            async for page in selections.pages(selection):
                scheduled += await service.resync([c for c in page if c not in from_file])
                click.echo(f"Scheduled {scheduled} contacts…", err=True)
        return scheduled, unknown, True

    scheduled, unknown, confirmed = ctms.admin(work)
    if not confirmed:
        return
    for address in unknown:
        click.echo(f"{address} not found in CTMS", err=True)
    click.echo(f"Scheduled {scheduled} contacts for Braze (sent in full on the next passes).")
