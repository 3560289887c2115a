"""`ctms roles ...` and `ctms permissions ...`: what API clients may do."""

from __future__ import annotations

import click

from ctms_core.domain.permissions import Permission, Role
from ctms_entrypoints.cli.context import (
    CliContext,
    confirm,
    echo_list,
    pass_ctms,
)
from ctms_entrypoints.container import Container


@click.group()
def roles() -> None:
    """Roles: named groups of permissions, granted to API clients."""


@roles.command("list")
@pass_ctms
def roles_list(ctms: CliContext) -> None:
    """List roles."""

    async def work(container: Container) -> list[Role]:
        return await container.access_control_service().list_roles()

    listed = ctms.admin(work)
    if not listed:
        click.echo("No roles found.")
        return
    click.echo("Roles:")
    for role in listed:
        described = f": {role.description}" if role.description else ""
        click.echo(f"- {role.name}{described}")


@roles.command("show")
@click.argument("role")
@pass_ctms
def roles_show(ctms: CliContext, role: str) -> None:
    """Show a role, its permissions and the clients holding it."""

    async def work(container: Container) -> Role:
        return await container.access_control_service().get_role(role)

    found = ctms.admin(work)
    click.echo(f"Role: {found.name}")
    if found.description:
        click.echo(f"Description: {found.description}")
    echo_list("Permissions:", found.permissions, "No permissions granted.")
    echo_list("API clients:", found.clients, "No API clients assigned.")


@roles.command("create")
@click.argument("role")
@click.argument("description", required=False)
@pass_ctms
def roles_create(ctms: CliContext, role: str, description: str | None) -> None:
    """Create a role."""

    async def work(container: Container) -> None:
        await container.access_control_service().create_role(role, description)

    ctms.admin(work)
    click.echo(f"✅ Created role '{role}'.")


@roles.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("role")
@pass_ctms
def roles_delete(ctms: CliContext, yes: bool, role: str) -> None:
    """Delete a role that no client holds and that grants no permission."""
    if not confirm(f"Delete role '{role}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().delete_role(role)

    ctms.admin(work)
    click.echo(f"✅ Deleted role '{role}'.")


@roles.command("grant")
@click.argument("role")
@click.argument("permission")
@pass_ctms
def roles_grant(ctms: CliContext, role: str, permission: str) -> None:
    """Give a role a permission."""

    async def work(container: Container) -> None:
        await container.access_control_service().grant_permission(role, permission)

    ctms.admin(work)
    click.echo(f"✅ Granted permission '{permission}' to role '{role}'.")


@roles.command("revoke")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("role")
@click.argument("permission")
@pass_ctms
def roles_revoke(ctms: CliContext, yes: bool, role: str, permission: str) -> None:
    """Take a permission away from a role."""
    if not confirm(f"Revoke permission '{permission}' from role '{role}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().revoke_permission(role, permission)

    ctms.admin(work)
    click.echo(f"✅ Revoked permission '{permission}' from role '{role}'.")


@click.group()
def permissions() -> None:
    """Permissions: what an operation requires (contacts:read, contacts:write, ...)."""


@permissions.command("list")
@pass_ctms
def permissions_list(ctms: CliContext) -> None:
    """List permissions."""

    async def work(container: Container) -> list[Permission]:
        return await container.access_control_service().list_permissions()

    listed = ctms.admin(work)
    if not listed:
        click.echo("No permissions found.")
        return
    click.echo("Permissions:")
    for permission in listed:
        described = f": {permission.description}" if permission.description else ""
        click.echo(f"- {permission.name}{described}")


@permissions.command("create")
@click.argument("name")
@click.argument("description", required=False)
@pass_ctms
def permissions_create(ctms: CliContext, name: str, description: str | None) -> None:
    """Create a permission."""

    async def work(container: Container) -> None:
        await container.access_control_service().create_permission(name, description)

    ctms.admin(work)
    click.echo(f"✅ Created permission '{name}'.")


@permissions.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@pass_ctms
def permissions_delete(ctms: CliContext, yes: bool, name: str) -> None:
    """Delete a permission that no role grants."""
    if not confirm(f"Delete permission '{name}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().delete_permission(name)

    ctms.admin(work)
    click.echo(f"✅ Deleted permission '{name}'.")
