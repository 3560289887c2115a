"""Schema migrations (alembic) callable from plain synchronous code: the CLI, tests, embedders.

Each helper runs on a private event loop in a worker thread, so it works the same whether or not the
caller is inside a running loop, and never touches the caller's loop.

Where the alembic scripts are: `schema_check.script_location()`.

Every revision applied (or stamped) is recorded in the `schema_history` table by `record_history`, the
`on_version_apply` hook of `migrations/env.py`; `schema_check.verdict` reads it, without alembic, to decide
whether this release may run on the database (docs/adr/0006-schema-revisions-at-start.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, delete, func, inspect, pool, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import create_async_engine

from ctms_adapters.postgres.engine import async_url, connect_args
from ctms_adapters.postgres.schema_check import run_in_private_loop, script_location
from ctms_adapters.postgres.schema_revisions import RecordedRevision, contract_reason
from ctms_adapters.postgres.tables import metadata, schema_history

Result = TypeVar("Result")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision the scripts know."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError("the migration scripts define no revision")
    return revision


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def is_expand_only(script: Script) -> bool:
    """Whether a revision only adds: it has no `# contract: <reason>` line (see `contract_reason`)."""
    return contract_reason(Path(script.path).read_text(encoding="utf-8")) is None


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (concurrent callers wait for each other)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    _run_on_connection(url, run, commit=True)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" removes every table)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    _run_on_connection(url, run, commit=True)


def current(url: str) -> str | None:
    """The revision the database at `url` is at; None when it was never migrated."""

    def run(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return _run_on_connection(url, run, commit=False)


class UnknownRevisionError(ValueError):
    """A revision the migration scripts do not define."""


def stamp(url: str, revision: str) -> tuple[str | None, str]:
    """Record the database at `url` as being at `revision` without running any migration (a manual
    repair); whatever revision it was at is replaced. Returns the revision before and after."""
    try:
        script = _scripts().get_revision(revision)
    except CommandError as error:
        raise UnknownRevisionError(str(error)) from None
    if script is None:
        raise UnknownRevisionError(f"Not a revision: {revision!r}")
    before = current(url)

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.stamp(config, script.revision, purge=True)

    _run_on_connection(url, run, commit=True)
    return before, script.revision


@dataclass(frozen=True, slots=True)
class RevisionStatus:
    """A line of `ctms db history`."""

    revision: str
    down_revision: str | None
    expand_only: bool
    known: bool  # defined by this release's scripts (else only recorded by a newer release)
    applied_at: datetime | None  # None: not recorded in the database's schema_history
    current: bool


def history(url: str) -> list[RevisionStatus]:
    """This release's revisions and those the database recorded, oldest first, with the one the
    database is at marked `current`."""
    scripts = _scripts()
    ours = {
        script.revision: script
        for script in scripts.walk_revisions()  # newest first
    }

    def run(
        connection: Connection,
    ) -> tuple[set[str], dict[str, tuple[RecordedRevision, datetime]]]:
        heads = set(MigrationContext.configure(connection).get_current_heads())
        return heads, _recorded(connection)

    heads, recorded = _run_on_connection(url, run, commit=False)
    lines: dict[str, RevisionStatus] = {}
    for revision, script in ours.items():
        at = recorded.get(revision)
        lines[revision] = RevisionStatus(
            revision,
            _down_revision(script),
            is_expand_only(script),
            True,
            at[1] if at else None,
            revision in heads,
        )
    for revision, (row, applied_at) in recorded.items():
        if revision not in lines:
            lines[revision] = RevisionStatus(
                revision, row.down_revision, row.expand_only, False, applied_at, revision in heads
            )
    return _oldest_first(lines)


def _oldest_first(lines: dict[str, RevisionStatus]) -> list[RevisionStatus]:
    """Follow the chain from the base; what the chain does not reach comes last, by name."""
    children: dict[str | None, list[str]] = {}
    for line in lines.values():
        children.setdefault(line.down_revision, []).append(line.revision)
    ordered: list[RevisionStatus] = []
    pending = sorted(children.get(None, []))
    while pending:
        revision = pending.pop(0)
        if any(line.revision == revision for line in ordered):
            continue
        ordered.append(lines[revision])
        pending.extend(sorted(children.get(revision, [])))
    placed = {line.revision for line in ordered}
    return ordered + [lines[name] for name in sorted(lines) if name not in placed]


def _recorded(connection: Connection) -> dict[str, tuple[RecordedRevision, datetime]]:
    """The database's schema_history rows (none before revision 0006 created the table)."""
    if not inspect(connection).has_table(schema_history.name):
        return {}
    rows = connection.execute(select(schema_history))
    return {
        row.revision: (
            RecordedRevision(row.revision, row.down_revision, row.expand_only),
            row.applied_at,
        )
        for row in rows
    }


def _down_revision(script: Script) -> str | None:
    down = script.down_revision
    if isinstance(down, tuple | list):  # a merge point: CTMS keeps one linear history
        return str(down[0]) if down else None
    return down


def record_history(
    *, ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]
) -> None:
    """alembic's `on_version_apply` hook: keep `schema_history` equal to the revisions the database is
    at and every one before them (each with its parent and whether it only adds), after every upgrade,
    downgrade or stamp step. A revision just applied gets the current time; revisions recorded for
    the first time otherwise (the backfill when the table is created, a stamp) get it too. Rows of
    revisions these scripts do not know (written by a newer release) are kept."""
    connection = ctx.connection
    if ctx.as_sql or connection is None or not inspect(connection).has_table(schema_history.name):
        return  # offline SQL, or a revision older than the table
    revisions = step.revision_map
    reached: dict[str, Script] = {}
    for script in revisions.iterate_revisions(tuple(heads), "base"):
        assert isinstance(script, Script)
        reached[script.revision] = script
    known = {revision.revision for revision in revisions.iterate_revisions("heads", "base")}
    stale = known - reached.keys()
    if stale:
        connection.execute(delete(schema_history).where(schema_history.c.revision.in_(stale)))
    if reached:
        rows = [
            {
                "revision": script.revision,
                "down_revision": _down_revision(script),
                "expand_only": is_expand_only(script),
            }
            for script in reached.values()
        ]
        insert = pg_insert(schema_history).values(rows)
        connection.execute(
            insert.on_conflict_do_nothing(index_elements=[schema_history.c.revision])
        )
    if step.is_upgrade and not step.is_stamp:
        applied = list(step.up_revision_ids)
        connection.execute(
            schema_history.update()
            .where(schema_history.c.revision.in_(applied))
            .values(applied_at=func.now())
        )


def check(url: str) -> list[str]:
    """Differences between `metadata` and the database at `url`, as alembic's autogenerate sees them
    (tables, columns, types, nullability, server defaults, indexes, unique and foreign keys); an empty
    list means the migrations produce exactly the schema the code expects."""

    def run(connection: Connection) -> list[str]:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True},
        )
        return [_describe(difference) for difference in compare_metadata(context, metadata)]

    return _run_on_connection(url, run, commit=False)


def _describe(difference: Any) -> str:
    """One line per difference: the operation and the names of what it concerns."""
    if isinstance(difference, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in difference)
    operation, *details = difference
    return f"{operation}: " + ", ".join(_name_of(detail) for detail in details)


def _name_of(detail: Any) -> str:
    name = getattr(detail, "name", None)
    table = getattr(detail, "table", None)
    if name is not None and table is not None and getattr(table, "name", None):
        return f"{table.name}.{name}"
    return str(name) if name is not None else repr(detail)


def _run_on_connection(url: str, work: Callable[[Connection], Result], *, commit: bool) -> Result:
    async def run() -> Result:
        engine = create_async_engine(
            async_url(url),
            poolclass=pool.NullPool,
            connect_args=connect_args("ctms-migrations"),
        )
        try:
            async with engine.connect() as connection:
                result = await connection.run_sync(work)
                if commit:
                    await connection.commit()
                return result
        finally:
            await engine.dispose()

    return run_in_private_loop(run())
