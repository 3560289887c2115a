"""The `ctms` command: the API server, migrations and administration.

Exit codes: 0 success, 1 failure, 2 usage error, 4 not found, 10 conflict or failed precondition
(the codes of the later `ctms-cli`, R§10.2 item 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Identity
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.errors import (
    BadRequestError,
    CoreError,
    EmailNotFoundError,
    NotFoundError,
    PreconditionFailedError,
)
from ctms_core.domain.permissions import Permission, Role
from ctms_core.services.api_clients import ApiClientExistsError, ClientCredentials
from ctms_entrypoints.container import Container, MissingConfigurationError, build_container
from ctms_entrypoints.http.app import load_version_document
from ctms_entrypoints.observability.setup import set_up_observability
from ctms_entrypoints.runtime import (
    Runtime,
    SchemaMismatchError,
    database_runtime,
    read_development_client,
    write_development_client,
)
from ctms_entrypoints.settings import Settings, SettingsError

if TYPE_CHECKING:
    from ctms_adapters.postgres.adoption import AdoptionPlan, AdoptionSummary

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


@contextlib.contextmanager
def _database(
    settings: Settings, *, ensure_schema: bool = True, migrate_in_a_child_process: bool = False
) -> Iterator[Runtime]:
    """`database_runtime`, with a schema this release cannot run on reported as a failed
    precondition (the message says which `ctms db ...` command fixes it)."""
    try:
        with database_runtime(
            settings,
            ensure_schema=ensure_schema,
            migrate_in_a_child_process=migrate_in_a_child_process,
        ) as runtime:
            yield runtime
    except SchemaMismatchError as error:
        _fail(str(error), EXIT_CONFLICT)


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
    with _database(_settings()) as runtime:
        try:
            return _run_with_container(runtime, work)
        except (ApiClientExistsError, PreconditionFailedError) as error:
            _fail(error.detail, EXIT_CONFLICT)
        except NotFoundError as error:
            _fail(error.detail, EXIT_NOT_FOUND)
        except BadRequestError as error:
            _fail(error.detail, 2)
        except MissingConfigurationError as error:
            _fail(str(error))


def _confirm(question: str, yes: bool) -> bool:
    """Whether to go on with a destructive command: `--yes`, or the operator says so. Declining prints
    `Operation cancelled.` (and the command exits 0, R§10.2 item 7)."""
    if yes or click.confirm(question, default=False):
        return True
    click.echo("Operation cancelled.")
    return False


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "Never"


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


@cli.command()
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
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP API. Without CTMS_DB_URL it runs on the embedded PostgreSQL (migrated on start);
    a CTMS_DB_URL database must have been upgraded first (`ctms db upgrade`)."""
    import uvicorn

    settings = _settings()
    if settings.async_db_url is not None and not settings.secret_key:
        _fail("CTMS_SECRET_KEY is required when CTMS_DB_URL is set.")
    host, settings = serve_defaults(settings, host, os.environ)
    # Workers (separate processes) read their settings from the environment.
    os.environ["CTMS_USE_MOZLOG"] = "true" if settings.use_mozlog else "false"
    port = port if port is not None else settings.port
    if not _set_in(os.environ, "CTMS_SERVER_PREFIX"):
        # Links (`/updates` next pages, the printed examples) point at this server by default.
        os.environ["CTMS_SERVER_PREFIX"] = f"http://localhost:{port}"
        settings = dataclasses.replace(settings, server_prefix=os.environ["CTMS_SERVER_PREFIX"])
    set_up_observability(settings, load_version_document(settings))
    with _database(settings, migrate_in_a_child_process=True) as runtime:
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
    """Apply migrations up to REVISION. To the head, on a database ahead of this release by expand-only
    revisions it does nothing (the migration job of a rollback), and it refuses a database ahead by a
    contract revision or not migrated by CTMS (a ctms-api database is adopted with `ctms db adopt`)."""
    from ctms_adapters.postgres.migrations import upgrade
    from ctms_adapters.postgres.schema_check import verdict
    from ctms_adapters.postgres.schema_revisions import SchemaState

    with _database(_settings(), ensure_schema=False) as runtime:
        url = runtime.settings.async_db_url
        assert url is not None
        if revision == "head":
            found = verdict(url)
            if found.state is SchemaState.AHEAD_BY_EXPANSIONS:
                click.echo(f"Nothing to upgrade. {found.message}")
                return
            if found.state not in {SchemaState.CURRENT, SchemaState.BEHIND}:
                _fail(found.message, EXIT_CONFLICT)
        upgrade(url, revision)
    click.echo(f"Database upgraded to {revision}.")


@db.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    from ctms_adapters.postgres.migrations import current

    with _database(_settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        click.echo(current(runtime.settings.async_db_url) or "(no revision)")


@db.command("check")
def db_check() -> None:
    """Fail (exit 1) when the database schema differs from the models."""
    from ctms_adapters.postgres.migrations import check

    with _database(_settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        differences = check(runtime.settings.async_db_url)
    if differences:
        _fail("Models and database differ:\n" + "\n".join(f"  {d}" for d in differences))
    click.echo("Models and migrations agree.")


@db.command("adopt")
@click.option("--check", "check_only", is_flag=True, help="Plan only: report, write nothing.")
def db_adopt(check_only: bool) -> None:
    """Convert a ctms-api database (v3.3 to v6) in place to our schema, online (docs/cutover.md).

    Exits 1 when the database is refused or adoption is blocked by its data."""
    from ctms_adapters.postgres.adoption import AdoptionRefusedError, adopt, plan_adoption

    with _database(_settings(), ensure_schema=False) as runtime:
        url = runtime.settings.async_db_url
        assert url is not None
        try:
            plan = plan_adoption(url)
            _echo_adoption_plan(plan, check_only=check_only)
            if check_only:
                if not plan.can_proceed:
                    sys.exit(1)
                return
            if not plan.can_proceed:
                _fail("Adoption blocked: fix the blockers above, then run it again.")
            summary = adopt(url, _AdoptionProgressOutput())
        except AdoptionRefusedError as error:
            _fail(f"Refused: {error}")
    if summary.plan.already_adopted:
        click.echo(f"Nothing to adopt: the database is ours, now at {summary.revision_after}.")
        return
    _echo_adoption_summary(summary)


def _echo_adoption_plan(plan: AdoptionPlan, *, check_only: bool) -> None:
    if plan.already_adopted:
        click.echo(
            f"The database is already ours (revision {plan.revision}): nothing to adopt"
            + ("." if check_only else "; running our migrations if any are missing.")
        )
        return
    assert plan.release is not None
    click.echo(f"Recognised ctms-api {plan.release.name} (alembic revision {plan.revision}).")
    if plan.blockers:
        click.echo(f"\nBlockers ({len(plan.blockers)}): adoption cannot proceed until fixed.")
        for blocker in plan.blockers:
            click.echo(f"  - {blocker.problem}: {blocker.count}")
            for example in blocker.examples:
                click.echo(f"      e.g. {example}")
    else:
        click.echo("\nBlockers: none.")
    if plan.data_changes:
        click.echo("\nStored values it converts (meaning kept):")
        for change in plan.data_changes:
            click.echo(f"  - {change.change}: {change.count} rows")
    click.echo("\nSteps:")
    for step in plan.steps:
        click.echo(f"  [{'done' if step.done else 'todo'}] {step.title}")
    click.echo("  [todo] Stamp revision 0005_acoustic_sync, then apply our later migrations")
    click.echo("")


def _echo_adoption_summary(summary: AdoptionSummary) -> None:
    click.echo(f"\nAdopted: the database is now at revision {summary.revision_after}.")
    click.echo("\nTime per step:")
    for title, seconds in summary.step_seconds.items():
        click.echo(f"  {seconds:8.1f} s  {title}")
    click.echo("\nRows per table (before → after):")
    for table in sorted(set(summary.rows_before) | set(summary.rows_after)):
        before = summary.rows_before.get(table)
        after = summary.rows_after.get(table)
        click.echo(f"  {table:28} {'-' if before is None else before:>10} → {after}")


class _AdoptionProgressOutput:
    """Adoption progress on the terminal: a bar per long step (rows done, time left) on a TTY, plain
    lines otherwise (logs of a deploy job)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._interactive = sys.stdout.isatty()
        self._done = 0
        self._total = 0
        self._last_percent = -10

    def step_started(self, title: str, total_rows: int | None) -> None:
        self._done, self._total, self._last_percent = 0, total_rows or 0, -10
        if total_rows and self._interactive:
            self._bar = click.progressbar(
                length=total_rows, label=title, show_eta=True, show_pos=True
            )
            self._bar.__enter__()
        else:
            click.echo(f"{title} …" + (f" ({total_rows} rows)" if total_rows else ""))

    def rows_done(self, count: int) -> None:
        self._done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self._total:
            percent = 100 * self._done // self._total
            if percent >= self._last_percent + 10:
                self._last_percent = percent
                click.echo(f"  {self._done}/{self._total} rows ({percent} %)")

    def step_finished(self, title: str, seconds: float) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        click.echo(f"  done in {seconds:.1f} s")


@db.command("history")
def db_history() -> None:
    """List the schema revisions, oldest first: which one the database is at, and which only add
    (expand) or remove or change (contract)."""
    from ctms_adapters.postgres.migrations import history

    with _database(_settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        lines = history(runtime.settings.async_db_url)
    for line in lines:
        kind = "expand" if line.expand_only else "contract"
        applied = f"applied {_when(line.applied_at)}" if line.applied_at else "not applied"
        known = "" if line.known else "  (not in this release)"
        marker = "*" if line.current else " "
        click.echo(f"{marker} {line.revision:<32} {kind:<8}  {applied}{known}")
    if not any(line.current for line in lines):
        click.echo("(the database is at none of these revisions: see `ctms db current`)")


@db.command("stamp")
@click.argument("revision")
def db_stamp(revision: str) -> None:
    """Record the database as being at REVISION without running any migration: a manual repair, for
    a schema that is known to match REVISION (docs/deployment.md)."""
    from ctms_adapters.postgres.migrations import UnknownRevisionError, stamp

    with _database(_settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        try:
            before, after = stamp(runtime.settings.async_db_url, revision)
        except UnknownRevisionError as error:
            _fail(f"Unknown revision {revision!r}: {error}", EXIT_NOT_FOUND)
    click.echo(
        f"Stamped the database at {after} (it was at {before or 'no revision'}); no migration ran."
    )


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


@clients.command("set-email")
@click.argument("name")
@click.argument("email")
def clients_set_email(name: str, email: str) -> None:
    """Change the contact address of a client's owner; the credentials stay valid."""

    async def work(container: Container) -> bool:
        return await container.api_client_service().set_email(name, email)

    if _admin(work):
        click.echo(f"API client {name!r} now has e-mail {email}.")
    else:
        click.echo(f"API client {name!r} already had e-mail {email}.")


@clients.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
def clients_delete(yes: bool, name: str) -> None:
    """Delete an API client and its role grants; its tokens stop working. (A client created again
    under the same name would accept them until they expire: rotate its secret to refuse them.)"""
    if not _confirm(f"Delete API client '{name}'? Its tokens will stop working.", yes):
        return

    async def work(container: Container) -> ApiClient:
        return await container.api_client_service().delete(name)

    deleted = _admin(work)
    click.echo(f"✅ Deleted API client '{deleted.client_id}'.")


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


@clients.command("show")
@click.argument("name")
def clients_show(name: str) -> None:
    """Show an API client and its roles."""

    async def work(container: Container) -> ApiClient:
        return await container.api_client_service().get(name)

    client = _admin(work)
    click.echo(f"Client ID: {client.client_id}")
    click.echo(f"Email: {client.email}")
    click.echo(f"Enabled: {'Yes' if client.enabled else 'No'}")
    click.echo(f"Last Access: {_when(client.last_access)}")
    if client.roles:
        click.echo("Roles:")
        for role in client.roles:
            click.echo(f"- {role}")
    else:
        click.echo("No roles assigned.")


@clients.command("grant")
@click.argument("name")
@click.argument("role")
def clients_grant(name: str, role: str) -> None:
    """Give an API client a role."""

    async def work(container: Container) -> bool:
        return await container.access_control_service().grant_role(name, role)

    if _admin(work):
        click.echo(f"✅ Granted role '{role}' to API client '{name}'.")
    else:
        click.echo(f"API client '{name}' already has role '{role}'.")


@clients.command("revoke")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
@click.argument("role")
def clients_revoke(yes: bool, name: str, role: str) -> None:
    """Take a role away from an API client."""
    if not _confirm(f"Revoke role '{role}' from API client '{name}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().revoke_role(name, role)

    _admin(work)
    click.echo(f"✅ Revoked role '{role}' from API client '{name}'.")


# --- roles and permissions -------------------------------------------------------------------------


@cli.group()
def roles() -> None:
    """Roles: named groups of permissions, granted to API clients."""


@roles.command("list")
def roles_list() -> None:
    """List roles."""

    async def work(container: Container) -> list[Role]:
        return await container.access_control_service().list_roles()

    listed = _admin(work)
    if not listed:
        click.echo("No roles found.")
        return
    click.echo("Roles:")
    for role in listed:
        described = f": {role.description}" if role.description else ""
        click.echo(f"- {role.name}{described}")


@roles.command("show")
@click.argument("role")
def roles_show(role: str) -> None:
    """Show a role, its permissions and the clients holding it."""

    async def work(container: Container) -> Role:
        return await container.access_control_service().get_role(role)

    found = _admin(work)
    click.echo(f"Role: {found.name}")
    if found.description:
        click.echo(f"Description: {found.description}")
    _echo_list("Permissions:", found.permissions, "No permissions granted.")
    _echo_list("API clients:", found.clients, "No API clients assigned.")


def _echo_list(title: str, names: Iterable[str], empty: str) -> None:
    names = list(names)
    if not names:
        click.echo(empty)
        return
    click.echo(title)
    for name in names:
        click.echo(f"- {name}")


@roles.command("create")
@click.argument("role")
@click.argument("description", required=False)
def roles_create(role: str, description: str | None) -> None:
    """Create a role."""

    async def work(container: Container) -> None:
        await container.access_control_service().create_role(role, description)

    _admin(work)
    click.echo(f"✅ Created role '{role}'.")


@roles.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("role")
def roles_delete(yes: bool, role: str) -> None:
    """Delete a role that no client holds and that grants no permission."""
    if not _confirm(f"Delete role '{role}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().delete_role(role)

    _admin(work)
    click.echo(f"✅ Deleted role '{role}'.")


@roles.command("grant")
@click.argument("role")
@click.argument("permission")
def roles_grant(role: str, permission: str) -> None:
    """Give a role a permission."""

    async def work(container: Container) -> None:
        await container.access_control_service().grant_permission(role, permission)

    _admin(work)
    click.echo(f"✅ Granted permission '{permission}' to role '{role}'.")


@roles.command("revoke")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("role")
@click.argument("permission")
def roles_revoke(yes: bool, role: str, permission: str) -> None:
    """Take a permission away from a role."""
    if not _confirm(f"Revoke permission '{permission}' from role '{role}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().revoke_permission(role, permission)

    _admin(work)
    click.echo(f"✅ Revoked permission '{permission}' from role '{role}'.")


@cli.group()
def permissions() -> None:
    """Permissions: what an operation requires (contacts:read, contacts:write, ...)."""


@permissions.command("list")
def permissions_list() -> None:
    """List permissions."""

    async def work(container: Container) -> list[Permission]:
        return await container.access_control_service().list_permissions()

    listed = _admin(work)
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
def permissions_create(name: str, description: str | None) -> None:
    """Create a permission."""

    async def work(container: Container) -> None:
        await container.access_control_service().create_permission(name, description)

    _admin(work)
    click.echo(f"✅ Created permission '{name}'.")


@permissions.command("delete")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.argument("name")
def permissions_delete(yes: bool, name: str) -> None:
    """Delete a permission that no role grants."""
    if not _confirm(f"Delete permission '{name}'?", yes):
        return

    async def work(container: Container) -> None:
        await container.access_control_service().delete_permission(name)

    _admin(work)
    click.echo(f"✅ Deleted permission '{name}'.")


# --- erasure ---------------------------------------------------------------------------------------

PROGRESS_EVERY = 100


def _addresses(emails: Iterable[str], email_file: Path | None) -> list[str]:
    """File lines (right-stripped, blank lines skipped), then `--email` values (R§9.2)."""
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


@cli.command("delete-bulk")
@click.option("--email", "emails", multiple=True, help="An address to erase (repeatable).")
@click.option(
    "--email-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of addresses to erase, one per line.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete_bulk(emails: tuple[str, ...], email_file: Path | None, yes: bool) -> None:
    """Erase contacts by primary e-mail, as DELETE /ctms/{primary_email} does (with an audit record
    per erased contact). Exits 0 whatever was found."""
    addresses = _addresses(emails, email_file)
    if not addresses:
        raise click.UsageError("Give --email and/or --email-file.")
    if not _confirm(f"Erase the contacts of {len(addresses)} address(es)?", yes):
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

    deleted, missing = _admin(work)
    click.echo(f"Deleted {deleted} contacts; {missing} addresses not found.")


@cli.group()
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
def audit_erasures(as_json: bool, since: datetime | None, email: str | None) -> None:
    """List erased contacts: when, by which API client, email_id, the salted address hash, and whether
    the erasure's address was dropped before it reached Acoustic."""

    async def work(container: Container) -> list[ErasureRecord]:
        return await container.erasure_audit_service().list(since=since, primary_email=email)

    records = _admin(work)
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


from ctms_entrypoints.cli.stripe import ingest_stripe  # noqa: E402 - registered on the group

cli.add_command(ingest_stripe)

from ctms_entrypoints.cli.acoustic import (  # noqa: E402 - registered on the group
    acoustic,
    healthcheck_sync,
    sync,
)

cli.add_command(sync)
cli.add_command(healthcheck_sync)
cli.add_command(acoustic)

from ctms_entrypoints.cli.waitlists import waitlists  # noqa: E402 - registered on the group

cli.add_command(waitlists)


def main() -> None:
    cli()
