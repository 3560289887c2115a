"""`ctms serve`: the HTTP API, on the configured database or the embedded one."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import click

from ctms_core.domain.errors import NotFoundError
from ctms_core.services.api_clients import ApiClientExistsError, ClientCredentials
from ctms_entrypoints.cli.context import CliContext, fail, pass_ctms, print_credentials
from ctms_entrypoints.container import Container
from ctms_entrypoints.http.app import load_version_document
from ctms_entrypoints.runtime import Runtime, read_development_client, write_development_client
from ctms_entrypoints.settings import Settings

DEV_CLIENT_NAME = "dev"
DEVELOPMENT_HOST = "127.0.0.1"


def _set_in(environ: Mapping[str, str], name: str) -> bool:
    """Whether the environment sets `name` (any case; an empty value counts as unset, as in settings)."""
    return any(key.upper() == name and value != "" for key, value in environ.items())


def serve_defaults(
    settings: Settings, host: str | None, environ: Mapping[str, str]
) -> tuple[str, Settings]:
    """The bind address and settings `ctms serve` runs with.

    Development mode (no `CTMS_DB_URL`: the embedded database on a person's machine) listens on
    127.0.0.1 unless `--host` or `HOST` says otherwise, and logs for humans (the console renderer)
    unless `CTMS_USE_MOZLOG` is set: the printed development credentials stay readable. With
    `CTMS_DB_URL` (production), `HOST` (default 0.0.0.0) and `CTMS_USE_MOZLOG` (default true) apply.
    """
    if settings.db_url is not None:
        return host or settings.host, settings
    if host is None:
        host = settings.host if _set_in(environ, "HOST") else DEVELOPMENT_HOST
    if not _set_in(environ, "CTMS_USE_MOZLOG"):
        settings = dataclasses.replace(settings, use_mozlog=False)
    return host, settings


@click.command()
@click.option(
    "--host",
    default=None,
    help="Bind address (default: $HOST, else 0.0.0.0 with CTMS_DB_URL and 127.0.0.1 without).",
)
@click.option("--port", type=int, default=None, help="Bind port (default: $PORT or 8000).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="API worker processes (default: $CTMS_WEB_CONCURRENCY or 1).",
)
@pass_ctms
def serve(ctms: CliContext, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API. Without CTMS_DB_URL it runs on the embedded PostgreSQL (migrated on start);
    a CTMS_DB_URL database must have been upgraded first (`ctms db upgrade`)."""
    import uvicorn

    settings = ctms.settings()
    if settings.async_db_url is not None and not settings.secret_key:
        fail("CTMS_SECRET_KEY is required when CTMS_DB_URL is set.")
    host, settings = serve_defaults(settings, host, os.environ)
    # Workers (separate processes) read their settings from the environment.
    os.environ["CTMS_USE_MOZLOG"] = "true" if settings.use_mozlog else "false"
    port = port if port is not None else settings.port
    if not _set_in(os.environ, "CTMS_SERVER_PREFIX"):
        # Links (`/updates` next pages, the printed examples) point at this server by default.
        os.environ["CTMS_SERVER_PREFIX"] = f"http://localhost:{port}"
        settings = dataclasses.replace(settings, server_prefix=os.environ["CTMS_SERVER_PREFIX"])
    ctms.set_up_observability(settings, load_version_document(settings))
    with ctms.database(settings, migrate_in_a_child_process=True) as runtime:
        resolved = runtime.settings
        if runtime.development:
            _announce_development_client(ctms, runtime)
        # Workers (separate processes) read their settings from the environment.
        assert resolved.db_url is not None
        assert resolved.secret_key is not None
        os.environ["CTMS_DB_URL"] = resolved.db_url
        os.environ["CTMS_SECRET_KEY"] = resolved.secret_key
        uvicorn.run(
            "ctms_entrypoints.asgi:create_app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers or resolved.web_concurrency,
            access_log=False,
            log_config=None,  # records go through CTMS's logging set-up (MozLog by default)
            proxy_headers=True,
            server_header=False,
            # A deadline on reading each request head (the body's is the application's).
            http="ctms_entrypoints.http.read_deadline:ReadDeadlineHttpToolsProtocol",
        )


def _announce_development_client(ctms: CliContext, runtime: Runtime) -> None:
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
        credentials = ctms.run_with_container(runtime, ensure)
    except ApiClientExistsError:
        credentials = None
    click.echo(f"CTMS development mode: embedded PostgreSQL in {data_dir / 'postgres'}")
    if credentials is None:
        click.echo("Use `ctms clients create NAME --email E` to make API credentials.")
        return
    click.echo(f"Development API client (kept in {data_dir / 'dev-client.json'}):")
    print_credentials(credentials, runtime.settings, as_json=False)
