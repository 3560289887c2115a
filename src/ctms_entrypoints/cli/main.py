"""The `ctms` command: the API server, migrations and administration.

This module only names the commands of the `ctms_entrypoints.cli` modules. A command's module is
imported when that command runs (or when `--help` lists them all), so a command imports only what it
uses: `ctms healthcheck-sync`, the sync worker's liveness probe that Kubernetes runs every minute, loads
the settings and nothing of the application. The context each command receives is `CliContext`
(`cli/context.py`, with the exit codes).
"""

from __future__ import annotations

import importlib

import click

# Command name → "module:attribute", in the order `ctms --help` lists them.
COMMANDS = {
    "serve": "ctms_entrypoints.cli.serve:serve",
    "db": "ctms_entrypoints.cli.db:db",
    "clients": "ctms_entrypoints.cli.clients:clients",
    "roles": "ctms_entrypoints.cli.roles:roles",
    "permissions": "ctms_entrypoints.cli.roles:permissions",
    "delete-bulk": "ctms_entrypoints.cli.erasure:delete_bulk",
    "audit": "ctms_entrypoints.cli.erasure:audit",
    "ingest-stripe": "ctms_entrypoints.cli.stripe:ingest_stripe",
    "sync": "ctms_entrypoints.cli.acoustic:sync",
    "healthcheck-sync": "ctms_entrypoints.cli.healthcheck:healthcheck_sync",
    "acoustic": "ctms_entrypoints.cli.acoustic:acoustic",
    "braze": "ctms_entrypoints.cli.braze:braze",
    "waitlists": "ctms_entrypoints.cli.waitlists:waitlists",
}


class _CommandsLoadedOnUse(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=_CommandsLoadedOnUse, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """CTMS, the ConTact Management System."""


def main() -> None:
    cli()
