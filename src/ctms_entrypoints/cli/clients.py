"""`ctms clients ...`: API clients (OAuth2 client credentials) and their roles."""

from __future__ import annotations

import json
from typing import Any

import click

from ctms_core.domain.api_client import ApiClient
from ctms_core.services.api_clients import ClientCredentials
from ctms_entrypoints.cli.context import (
    CliContext,
    confirm,
    pass_ctms,
    print_credentials,
    when,
)
from ctms_entrypoints.container import Container


@click.group()
def clients() -> None:
    """API clients (OAuth2 client credentials)."""


@clients.command("create")
@click.argument("name")
@click.option("--email", "-e", required=True, help="Contact address of the client's owner.")
@click.option("--disabled", is_flag=True, help="Create the client disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@pass_ctms
def clients_create(ctms: CliContext, name: str, email: str, disabled: bool, as_json: bool) -> None:
    """Create an API client and print its credentials (shown only once)."""

    async def work(container: Container) -> ClientCredentials:
        return await container.api_client_service().create(name, email, enabled=not disabled)

    credentials = ctms.admin(work)
    print_credentials(credentials, ctms.settings(), as_json=as_json)
    if disabled and not as_json:
        click.echo(
            "These credentials are currently disabled, and can not be used to get an OAuth2 "
            "access token."
        )


def _toggle(ctms: CliContext, name: str, enabled: bool) -> None:
    async def work(container: Container) -> bool:
        return await container.api_client_service().set_enabled(name, enabled)

    word = "enabled" if enabled else "disabled"
    if ctms.admin(work):
        click.echo(f"API client {name!r} is now {word}.")
    else:
        click.echo(f"API client {name!r} was already {word}.")


@clients.command("enable")
@click.argument("name")
@pass_ctms
def clients_enable(ctms: CliContext, name: str) -> None:
    """Allow a client to get tokens again."""
    _toggle(ctms, name, True)


@clients.command("disable")
@click.argument("name")
@pass_ctms
def clients_disable(ctms: CliContext, name: str) -> None:
    """Refuse tokens to a client and revoke the tokens it holds."""
    _toggle(ctms, name, False)


@clients.command("rotate-secret")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@pass_ctms
def clients_rotate_secret(ctms: CliContext, name: str, as_json: bool) -> None:
    """Give a client a new secret; tokens issued before stop working."""

    async def work(container: Container) -> ClientCredentials:
        return await container.api_client_service().rotate_secret(name)

    print_credentials(ctms.admin(work), ctms.settings(), as_json=as_json)


@clients.command("set-email")
@click.argument("name")
@click.argument("email")
@pass_ctms
def clients_set_email(ctms: CliContext, name: str, email: str) -> None:
    """Change the contact address of a client's owner; the credentials stay valid."""

    async def work(container: Container) -> bool:
        return await container.api_client_service().set_email(name, email)

    if ctms.admin(work):
        click.echo(f"API client {name!r} now has e-mail {email}.")
    else:
        click.echo(f"API client {name!r} already had e-mail {email}.")


@clients.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@pass_ctms
def clients_delete(ctms: CliContext, yes: bool, name: str) -> None:
    """Delete an API client and its role grants; its tokens stop working. (A client created again
    under the same name would accept them until they expire: rotate its secret to refuse them.)"""
    if not confirm(f"Delete API client '{name}'? Its tokens will stop working.", yes):
        return

    async def work(container: Container) -> ApiClient:
        return await container.api_client_service().delete(name)

    deleted = ctms.admin(work)
    click.echo(f"✅ Deleted API client '{deleted.client_id}'.")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_ctms
def clients_list(ctms: CliContext, as_json: bool) -> None:
    """List API clients."""

    async def work(container: Container) -> list[Any]:
        return await container.api_client_service().list()

    listed = ctms.admin(work)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "client_id": c.client_id,
                        "email": c.email,
                        "enabled": c.enabled,
                        "last_access": c.last_access.isoformat() if c.last_access else None,
                    }
                    for c in listed
                ]
            )
        )
        return
    if not listed:
        click.echo("No API clients found.")
        return
    click.echo("API Clients:")
    for client in listed:
        if client.enabled:
            last = (
                client.last_access.strftime("%Y-%m-%d %H:%M:%S") if client.last_access else "Never"
            )
            click.echo(f"- {client.client_id} ({client.email}) - Enabled | Last Access: {last}")
        else:
            click.echo(f"- {client.client_id} ({client.email}) - Disabled")


@clients.command("show")
@click.argument("name")
@pass_ctms
def clients_show(ctms: CliContext, name: str) -> None:
    """Show an API client and its roles."""

    async def work(container: Container) -> ApiClient:
        return await container.api_client_service().get(name)

    client = ctms.admin(work)
    click.echo(f"Client ID: {client.client_id}")
    click.echo(f"Email: {client.email}")
    click.echo(f"Enabled: {'Yes' if client.enabled else 'No'}")
    click.echo(f"Last Access: {when(client.last_access)}")
    if client.roles:
        click.echo("Roles:")
        for role in client.roles:
            click.echo(f"- {role}")
    else:
        click.echo("No roles assigned.")


@clients.command("grant")
@click.argument("name")
@click.argument("role")
@pass_ctms
def clients_grant(ctms: CliContext, name: str, role: str) -> None:
    """Give an API client a role."""

    async def work(container: Container) -> bool:
        return await container.access_control_service().grant_role(name, role)

    if ctms.admin(work):
        click.echo(f"✅ Granted role '{role}' to API client '{name}'.")
    else:
        click.echo(f"API client '{name}' already has role '{role}'.")


@clients.command("revoke")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@click.argument("role")
@pass_ctms
def clients_revoke(ctms: CliContext, yes: bool, name: str, role: str) -> None:
    """Take a role away from an API client."""
    if not confirm(f"Revoke role '{role}' from API client '{name}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().revoke_role(name, role)

    ctms.admin(work)
    click.echo(f"✅ Revoked role '{role}' from API client '{name}'.")
