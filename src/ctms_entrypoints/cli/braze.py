"""`ctms braze newsletters|waitlists list|add NAME GROUP_ID|remove NAME`: which Braze subscription group
each newsletter and waitlist stands for (docs/braze.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from ctms_adapters.postgres import PostgresBrazeSubscriptionGroupRepository
from ctms_core.domain.braze import SubscriptionGroupKind
from ctms_core.services.braze_admin import BrazeAdminService
from ctms_entrypoints.cli.context import CliContext, pass_ctms
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
