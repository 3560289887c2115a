"""`ctms db ...`: schema migrations (alembic), and adopting a ctms-api database."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ctms_entrypoints.cli.context import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    CliContext,
    fail,
    pass_ctms,
    when,
)

if TYPE_CHECKING:
    from ctms_adapters.postgres.adoption import AdoptionPlan, AdoptionSummary


@click.group()
def db() -> None:
    """Database migrations (alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctms
def db_upgrade(ctms: CliContext, revision: str) -> None:
    """Apply migrations up to REVISION. To the head, on a database ahead of this release by expand-only
    revisions it does nothing (the migration job of a rollback), and it refuses a database ahead by a
    contract revision or not migrated by CTMS (a ctms-api database is adopted with `ctms db adopt`)."""
    from ctms_adapters.postgres.migrations import upgrade
    from ctms_adapters.postgres.schema_check import verdict
    from ctms_adapters.postgres.schema_revisions import SchemaState

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
        url = runtime.settings.async_db_url
        assert url is not None
        if revision == "head":
            found = verdict(url)
            if found.state is SchemaState.AHEAD_BY_EXPANSIONS:
                click.echo(f"Nothing to upgrade. {found.message}")
                return
            if found.state not in {SchemaState.CURRENT, SchemaState.BEHIND}:
                fail(found.message, EXIT_CONFLICT)
        upgrade(url, revision)
    click.echo(f"Database upgraded to {revision}.")


@db.command("current")
@pass_ctms
def db_current(ctms: CliContext) -> None:
    """Print the revision the database is at."""
    from ctms_adapters.postgres.migrations import current

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        click.echo(current(runtime.settings.async_db_url) or "(no revision)")


@db.command("check")
@pass_ctms
def db_check(ctms: CliContext) -> None:
    """Fail (exit 1) when the database schema differs from the models."""
    from ctms_adapters.postgres.migrations import check

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        differences = check(runtime.settings.async_db_url)
    if differences:
        fail("Models and database differ:\n" + "\n".join(f"  {d}" for d in differences))
    click.echo("Models and migrations agree.")


@db.command("adopt")
@click.option("--check", "check_only", is_flag=True, help="Plan only: report, write nothing.")
@pass_ctms
def db_adopt(ctms: CliContext, check_only: bool) -> None:
    """Convert a ctms-api database (v3.3 to v6) in place to our schema, online (docs/cutover.md).

    Exits 1 when the database is refused or adoption is blocked by its data."""
    from ctms_adapters.postgres.adoption import AdoptionRefusedError, adopt, plan_adoption

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
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
                fail("Adoption blocked: fix the blockers above, then run it again.")
            summary = adopt(url, _AdoptionProgressOutput())
        except AdoptionRefusedError as error:
            fail(f"Refused: {error}")
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
@pass_ctms
def db_history(ctms: CliContext) -> None:
    """List the schema revisions, oldest first: which one the database is at, and which only add
    (expand) or remove or change (contract)."""
    from ctms_adapters.postgres.migrations import history

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        lines = history(runtime.settings.async_db_url)
    for line in lines:
        kind = "expand" if line.expand_only else "contract"
        applied = f"applied {when(line.applied_at)}" if line.applied_at else "not applied"
        known = "" if line.known else "  (not in this release)"
        marker = "*" if line.current else " "
        click.echo(f"{marker} {line.revision:<32} {kind:<8}  {applied}{known}")
    if not any(line.current for line in lines):
        click.echo("(the database is at none of these revisions: see `ctms db current`)")


@db.command("stamp")
@click.argument("revision")
@pass_ctms
def db_stamp(ctms: CliContext, revision: str) -> None:
    """Record the database as being at REVISION without running any migration: a manual repair, for
    a schema that is known to match REVISION (docs/deployment.md)."""
    from ctms_adapters.postgres.migrations import UnknownRevisionError, stamp

    with ctms.database(ctms.settings(), ensure_schema=False) as runtime:
        assert runtime.settings.async_db_url is not None
        try:
            before, after = stamp(runtime.settings.async_db_url, revision)
        except UnknownRevisionError as error:
            fail(f"Unknown revision {revision!r}: {error}", EXIT_NOT_FOUND)
    click.echo(
        f"Stamped the database at {after} (it was at {before or 'no revision'}); no migration ran."
    )
