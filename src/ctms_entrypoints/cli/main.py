"""The `ctms` command: the API server, migrations and administration.

This module only assembles the command groups of the `ctms_entrypoints.cli` modules and makes the
context each command receives (`CliContext`, exit codes in `cli/context.py`).
"""

from __future__ import annotations

import click

from ctms_entrypoints.cli.acoustic import acoustic, healthcheck_sync, sync
from ctms_entrypoints.cli.braze import braze
from ctms_entrypoints.cli.clients import clients
from ctms_entrypoints.cli.context import CliContext
from ctms_entrypoints.cli.db import db
from ctms_entrypoints.cli.erasure import audit, delete_bulk
from ctms_entrypoints.cli.roles import permissions, roles
from ctms_entrypoints.cli.serve import serve
from ctms_entrypoints.cli.stripe import ingest_stripe
from ctms_entrypoints.cli.waitlists import waitlists
from ctms_entrypoints.observability.setup import set_up_observability
from ctms_entrypoints.runtime import database_runtime


def command_context() -> CliContext:
    """The context of a command run: the real database runtime and observability set-up."""
    return CliContext(database_runtime=database_runtime, set_up_observability=set_up_observability)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """CTMS, the ConTact Management System."""
    if ctx.obj is None:
        ctx.obj = command_context()


for command in (
    serve,
    db,
    clients,
    roles,
    permissions,
    delete_bulk,
    audit,
    ingest_stripe,
    sync,
    healthcheck_sync,
    acoustic,
    braze,
    waitlists,
):
    cli.add_command(command)


def main() -> None:
    cli()
