"""What every `ctms` command receives: `CliContext` (settings, database runtime, container) and the
shared helpers of the command modules (exit codes, failing, confirming, output).

Command modules import this module and never each other; `cli/main.py` names the commands and loads
each one's module only when it runs. `@pass_ctms` hands each command the context object (`ctx.obj`),
made here with the real database runtime unless a test passed its own.

Exit codes: 0 success, 1 failure, 2 usage error, 4 not found, 10 conflict or failed precondition
(the codes of the later `ctms-cli`, docs/contract.md §13.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click

from ctms_core.domain.errors import BadRequestError, NotFoundError, PreconditionFailedError
from ctms_core.services.api_clients import ApiClientExistsError, ClientCredentials
from ctms_entrypoints.container import (
    Container,
    MissingConfigurationError,
    build_container,
    dispose,
)
from ctms_entrypoints.observability.setup import set_up_observability
from ctms_entrypoints.runtime import Runtime, SchemaMismatchError, database_runtime
from ctms_entrypoints.settings import Settings, SettingsError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 10

T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print `message` on stderr and exit with `code`."""
    click.echo(message, err=True)
    sys.exit(code)


def confirm(question: str, yes: bool) -> bool:
    """Whether to go on with a destructive command: `--yes`, or the operator says so. Declining prints
    `Operation cancelled.` (and the command exits 0, docs/contract.md §13.1)."""
    if yes or click.confirm(question, default=False):
        return True
    click.echo("Operation cancelled.")
    return False


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "Never"


def echo_list(title: str, names: Iterable[str], empty: str) -> None:
    names = list(names)
    if not names:
        click.echo(empty)
        return
    click.echo(title)
    for name in names:
        click.echo(f"- {name}")


def print_credentials(credentials: ClientCredentials, settings: Settings, *, as_json: bool) -> None:
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


@dataclass(frozen=True, slots=True)
class CliContext:
    """The process around a command: how it opens the database (configured, or the embedded one) and
    sets up logging and Sentry. Containers come from the composition root (`build_container`)."""

    # The database the settings name, or the embedded one.
    database_runtime: Callable[..., contextlib.AbstractContextManager[Runtime]] = database_runtime
    set_up_observability: Callable[[Settings, bytes], None] = set_up_observability

    def settings(self) -> Settings:
        """The settings of the environment; invalid ones end the command (exit 1)."""
        try:
            return Settings.from_env()
        except SettingsError as error:
            fail(f"Invalid configuration: {error}")

    @contextlib.contextmanager
    def database(
        self,
        settings: Settings,
        *,
        ensure_schema: bool = True,
        migrate_in_a_child_process: bool = False,
    ) -> Iterator[Runtime]:
        """`database_runtime`, with a schema this release cannot run on reported as a failed
        precondition (the message says which `ctms db ...` command fixes it)."""
        try:
            with self.database_runtime(
                settings,
                ensure_schema=ensure_schema,
                migrate_in_a_child_process=migrate_in_a_child_process,
            ) as runtime:
                yield runtime
        except SchemaMismatchError as error:
            fail(str(error), EXIT_CONFLICT)

    def run_with_container(self, runtime: Runtime, work: Callable[[Container], Awaitable[T]]) -> T:
        """Run `work` on a container for `runtime`, disposing it afterwards."""

        async def run() -> T:
            container = build_container(runtime.settings)
            try:
                return await work(container)
            finally:
                await dispose(container)

        return asyncio.run(run())

    def admin(self, work: Callable[[Container], Coroutine[Any, Any, T]]) -> T:
        """Run an administration task on the configured (or embedded) database, mapping core errors
        to exit codes."""
        with self.database(self.settings()) as runtime:
            try:
                return self.run_with_container(runtime, work)
            except (ApiClientExistsError, PreconditionFailedError) as error:
                fail(error.detail, EXIT_CONFLICT)
            except NotFoundError as error:
                fail(error.detail, EXIT_NOT_FOUND)
            except BadRequestError as error:
                fail(error.detail, EXIT_USAGE)
            except MissingConfigurationError as error:
                fail(str(error))


# A command run from the shell gets the real database runtime and observability set-up; tests pass
# their own `CliContext` as the context object.
pass_ctms = click.make_pass_decorator(CliContext, ensure=True)
