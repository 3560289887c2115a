"""The `ctms` command: the API server, migrations and administration.

Exit codes: 0 success, 1 failure, 2 usage error, 4 not found, 10 conflict or failed precondition
(the codes of the later `ctms-cli`, R§10.2 item 7).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click

from ctms_core.domain.errors import BadRequestError, NotFoundError
from ctms_core.services.api_clients import ApiClientExistsError, ClientCredentials
from ctms_entrypoints.container import Container, build_container
from ctms_entrypoints.http.app import load_version_document
from ctms_entrypoints.observability.setup import set_up_observability
from ctms_entrypoints.runtime import (
    Runtime,
    database_runtime,
    read_development_client,
    write_development_client,
)
from ctms_entrypoints.settings import Settings, SettingsError

EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 10
DEV_CLIENT_NAME = "dev"

T = TypeVar("T")


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        _fail(f"Invalid configuration: {error}")


def _run_with_container(runtime: Runtime, work: Callable[[Container], Awaitable[T]]) -> T:
    """Run `work` on a container for `runtime`, disposing the database engine afterwards."""

    async def run() -> T:
        container = build_container(runtime.settings)
        try:
            return await work(container)
        finally:
            await container.engine().dispose()

    return asyncio.run(run())


def _admin(work: Callable[[Container], Coroutine[Any, Any, T]]) -> T:
    """Run an administration task on the configured (or embedded) database, mapping core errors to
    exit codes."""
    with database_runtime(_settings()) as runtime:
        try:
            return _run_with_container(runtime, work)
        except ApiClientExistsError as error:
            _fail(error.detail, EXIT_CONFLICT)
        except NotFoundError as error:
            _fail(error.detail, EXIT_NOT_FOUND)
        except BadRequestError as error:
            _fail(error.detail, 2)


def _print_credentials(
    credentials: ClientCredentials, settings: Settings, *, as_json: bool
) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {"client_id": credentials.client_id, "client_secret": credentials.client_secret}
            )
        )
        return
    prefix = settings.server_prefix.rstrip("/")
    click.echo(
        f"Your OAuth2 client credentials are:\n\n"
        f"      client_id: {credentials.client_id}\n"
        f"  client_secret: {credentials.client_secret}\n\n"
        f"You can get a token with:\n\n"
        f"  curl --user {credentials.client_id}:{credentials.client_secret} "
        f"-F grant_type=client_credentials {prefix}/token\n\n"
        f"or with the credentials in the form body:\n\n"
        f"  curl -F client_id={credentials.client_id} -F client_secret={credentials.client_secret} "
        f"{prefix}/token\n\n"
        f"then call the API with the access_token it returns:\n\n"
        f"  curl --oauth2-bearer <access_token> {prefix}/ctms?primary_email=<email>\n"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """CTMS, the ConTact Management System."""


# --- serve -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Bind address (default: $HOST or 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Bind port (default: $PORT or 8000).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="API worker processes (default: $CTMS_WEB_CONCURRENCY or 1).",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API. Without CTMS_DB_URL it runs on the embedded PostgreSQL."""
    import uvicorn

    settings = _settings()
    if settings.async_db_url is not None and not settings.secret_key:
        _fail("CTMS_SECRET_KEY is required when CTMS_DB_URL is set.")
    port = port if port is not None else settings.port
    if not any(name.upper() == "CTMS_SERVER_PREFIX" for name in os.environ):
        # Links (`/updates` next pages, the printed examples) point at this server by default.
        os.environ["CTMS_SERVER_PREFIX"] = f"http://localhost:{port}"
        settings = dataclasses.replace(settings, server_prefix=os.environ["CTMS_SERVER_PREFIX"])
    set_up_observability(settings, load_version_document(settings))
    with database_runtime(settings) as runtime:
        resolved = runtime.settings
        if runtime.development:
            _announce_development_client(runtime)
        # Workers (separate processes) read their settings from the environment.
        assert resolved.db_url is not None
        assert resolved.secret_key is not None
        os.environ["CTMS_DB_URL"] = resolved.db_url
        os.environ["CTMS_SECRET_KEY"] = resolved.secret_key
        uvicorn.run(
            "ctms_entrypoints.asgi:create_app_from_environment",
            factory=True,
            host=host or resolved.host,
            port=port,
            workers=workers or resolved.web_concurrency,
            access_log=False,
            log_config=None,  # records go through CTMS's logging set-up (MozLog by default)
            proxy_headers=True,
            server_header=False,
        )


def _announce_development_client(runtime: Runtime) -> None:
    """On the embedded database, make sure a development client exists and show how to use it."""
    data_dir = runtime.settings.data_dir
    known = read_development_client(data_dir)

    async def ensure(container: Container) -> ClientCredentials | None:
        service = container.api_client_service()
        if known is not None:
            try:
                await service.get(known["client_id"])
            except NotFoundError:
                pass
            else:
                return ClientCredentials(known["client_id"], known["client_secret"])
        if await service.list() and known is None:
            return None  # clients exist and none was made by us: show nothing secret
        credentials = await service.create(DEV_CLIENT_NAME, "dev@example.com")
        write_development_client(data_dir, credentials.client_id, credentials.client_secret)
        return credentials

    try:
        credentials = _run_with_container(runtime, ensure)
    except ApiClientExistsError:
        credentials = None
    click.echo(f"CTMS development mode: embedded PostgreSQL in {data_dir / 'postgres'}")
    if credentials is None:
        click.echo("Use `ctms clients create NAME --email E` to make API credentials.")
        return
    click.echo(f"Development API client (kept in {data_dir / 'dev-client.json'}):")
    _print_credentials(credentials, runtime.settings, as_json=False)


# --- db --------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database migrations (alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from ctms_adapters.postgres.migrations import upgrade

    with database_runtime(_settings(), migrate=False) as runtime:
        assert runtime.settings.async_db_url is not None
        upgrade(runtime.settings.async_db_url, revision)
    click.echo(f"Database upgraded to {revision}.")


@db.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    from ctms_adapters.postgres.migrations import current

    with database_runtime(_settings(), migrate=False) as runtime:
        assert runtime.settings.async_db_url is not None
        click.echo(current(runtime.settings.async_db_url) or "(no revision)")


@db.command("check")
def db_check() -> None:
    """Fail (exit 1) when the database schema differs from the models."""
    from ctms_adapters.postgres.migrations import check

    with database_runtime(_settings(), migrate=False) as runtime:
        assert runtime.settings.async_db_url is not None
        differences = check(runtime.settings.async_db_url)
    if differences:
        _fail("Models and database differ:\n" + "\n".join(f"  {d}" for d in differences))
    click.echo("Models and migrations agree.")


# --- clients ---------------------------------------------------------------------------------------


@cli.group()
def clients() -> None:
    """API clients (OAuth2 client credentials)."""


@clients.command("create")
@click.argument("name")
@click.option("--email", "-e", required=True, help="Contact address of the client's owner.")
@click.option("--disabled", is_flag=True, help="Create the client disabled.")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
def clients_create(name: str, email: str, disabled: bool, as_json: bool) -> None:
    """Create an API client and print its credentials (shown only once)."""

    async def work(container: Container) -> ClientCredentials:
        return await container.api_client_service().create(name, email, enabled=not disabled)

    credentials = _admin(work)
    _print_credentials(credentials, _settings(), as_json=as_json)
    if disabled and not as_json:
        click.echo(
            "These credentials are currently disabled, and can not be used to get an OAuth2 "
            "access token."
        )


def _toggle(name: str, enabled: bool) -> None:
    async def work(container: Container) -> bool:
        return await container.api_client_service().set_enabled(name, enabled)

    word = "enabled" if enabled else "disabled"
    if _admin(work):
        click.echo(f"API client {name!r} is now {word}.")
    else:
        click.echo(f"API client {name!r} was already {word}.")


@clients.command("enable")
@click.argument("name")
def clients_enable(name: str) -> None:
    """Allow a client to get tokens again."""
    _toggle(name, True)


@clients.command("disable")
@click.argument("name")
def clients_disable(name: str) -> None:
    """Refuse tokens to a client and revoke the tokens it holds."""
    _toggle(name, False)


@clients.command("rotate-secret")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
def clients_rotate_secret(name: str, as_json: bool) -> None:
    """Give a client a new secret; tokens issued before stop working."""

    async def work(container: Container) -> ClientCredentials:
        return await container.api_client_service().rotate_secret(name)

    _print_credentials(_admin(work), _settings(), as_json=as_json)


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def clients_list(as_json: bool) -> None:
    """List API clients."""

    async def work(container: Container) -> list[Any]:
        return await container.api_client_service().list()

    listed = _admin(work)
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


def main() -> None:
    cli()
