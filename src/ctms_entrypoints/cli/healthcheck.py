"""`ctms healthcheck-sync`: the sync worker's liveness probe (docs/contract.md §9.6).

Kubernetes runs it in every worker pod every minute, so it imports only the settings and the
healthcheck files' rules, not the application (no `CliContext`, no container): about a tenth of the CPU
and a quarter of the memory of a command that does.
"""

from __future__ import annotations

import sys

import click

from ctms_entrypoints.settings import Settings, SettingsError
from ctms_entrypoints.worker.healthcheck_file import healthcheck_age, healthcheck_path_for

EXIT_UNHEALTHY = 1


@click.command("healthcheck-sync")
def healthcheck_sync() -> None:
    """Exit 0 when the healthcheck file of every enabled destination's loop (CTMS_SYNC_DESTINATIONS)
    is younger than CTMS_BACKGROUND_HEALTHCHECK_AGE_S, else 1 (docs/contract.md §9.6; `acoustic`'s file
    is CTMS_BACKGROUND_HEALTHCHECK_PATH itself, another destination's has `.<destination>` appended)."""
    try:
        settings = Settings.from_env()
    except SettingsError as error:  # as `CliContext.settings` reports it
        click.echo(f"Invalid configuration: {error}", err=True)
        sys.exit(EXIT_UNHEALTHY)
    limit = settings.background_healthcheck_age_s
    ages: list[str] = []
    for destination in settings.sync_destination_names:
        path = healthcheck_path_for(settings.background_healthcheck_path, destination)
        try:
            if path is None:
                raise RuntimeError("BACKGROUND_HEALTHCHECK_PATH not set")
            if limit is None:
                raise RuntimeError("BACKGROUND_HEALTHCHECK_AGE_S not set")
            age = healthcheck_age(path)
            if age > limit:
                raise RuntimeError(
                    f"Age {age:.3f}s > {limit}s, written at {path.read_text().strip()}"
                )
        except (RuntimeError, OSError, ValueError) as error:
            click.echo(f"Healthcheck failed ({destination}): {error}", err=True)
            sys.exit(EXIT_UNHEALTHY)
        ages.append(f"{destination} age {age:.3f}s")
    click.echo(f"Healthcheck passed ({', '.join(ages)})")
