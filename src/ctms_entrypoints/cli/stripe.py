"""`ctms ingest-stripe FILE...`: load Stripe objects from JSON files (docs/contract.md §13.5), one transaction per object."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
import msgspec

from ctms_core.domain.errors import BadRequestError, WriteConflictError
from ctms_core.domain.stripe import ACTION_NAMES, UnknownStripeObject
from ctms_entrypoints.cli.context import EXIT_FAILURE, CliContext, pass_ctms
from ctms_entrypoints.container import Container

_REPORTED_ACTIONS = tuple(name for name in ACTION_NAMES if name != "skipped")


def _objects(path: Path) -> list[Any]:
    """The objects of one file: a JSON object, or a list of them (nulls left out)."""
    document = msgspec.json.decode(path.read_bytes())
    return document if isinstance(document, list) else [document]


@click.command("ingest-stripe")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@pass_ctms
def ingest_stripe(ctms: CliContext, files: tuple[Path, ...]) -> None:
    """Ingest Stripe objects from FILES (each one object or a list of objects) into the database.

    Progress goes to stderr; the last line sums up. Exits 1 if any object failed.
    """

    async def work(container: Container) -> tuple[int, Counter[str], int, int]:
        service = container.stripe_ingest_service()
        ingested, skipped, failed = 0, 0, 0
        actions: Counter[str] = Counter()
        for path in files:
            try:
                objects = _objects(path)
            except (OSError, msgspec.DecodeError) as error:
                click.echo(f"{path}: cannot read: {error}", err=True)
                failed += 1
                continue
            for index, data in enumerate(objects):
                where = f"{path}[{index}]"
                if data is None:
                    skipped += 1
                    continue
                try:
                    result = await service.ingest(data)
                except UnknownStripeObject as unknown:
                    skipped += 1
                    click.echo(f"{where}: skipped {unknown.label}", err=True)
                    continue
                except (BadRequestError, WriteConflictError) as error:
                    failed += 1
                    click.echo(f"{where}: failed: {error}", err=True)
                    continue
                ingested += 1
                for action, labels in result.actions.items():
                    actions[action] += len(labels)
                click.echo(
                    f"{where}: {result.object_type}:{result.stripe_id} "
                    + ", ".join(f"{a} {len(v)}" for a, v in sorted(result.actions.items())),
                    err=True,
                )
        return ingested, actions, skipped, failed

    ingested, actions, skipped, failed = ctms.admin(work)
    counts = ", ".join(f"{name} {actions[name]}" for name in _REPORTED_ACTIONS)
    click.echo(f"Ingested {ingested} objects: {counts}; skipped {skipped}; failed {failed}.")
    if failed:
        raise SystemExit(EXIT_FAILURE)
