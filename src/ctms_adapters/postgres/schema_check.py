"""The schema-revision check every process makes at start (docs/adr/0006-schema-revisions-at-start.md),
without alembic.

A serving process never migrates, and alembic costs it about 11 MB once imported and run (its peak memory
is a target: docs/performance.md). So this module reads this release's revisions from the files of the
migration scripts (their `revision` and `down_revision` assignments, parsed, not imported) and the
database's from `alembic_version` and `schema_history` with SQLAlchemy Core. `migrations` (alembic) is for
the commands that change the schema.

Where the scripts are: `CTMS_MIGRATIONS_DIR` if set; else `_migrations/` next to this module (a wheel ships
the repository's `migrations/` there, via hatch `force-include`); else the repository's `migrations/` (a
source checkout or an editable install).
"""

from __future__ import annotations

import ast
import asyncio
import os
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import pool, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from ctms_adapters.postgres.engine import async_url, connect_args
from ctms_adapters.postgres.schema_revisions import RecordedRevision, Verdict, startup_verdict
from ctms_adapters.postgres.tables import schema_history

MIGRATIONS_DIR_VARIABLE = "CTMS_MIGRATIONS_DIR"
PACKAGED_MIGRATIONS = Path(__file__).with_name("_migrations")
# src/ctms_adapters/postgres/schema_check.py -> the repository root
SOURCE_MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

Result = TypeVar("Result")


def script_location() -> Path:
    """The directory holding alembic's `env.py` and `versions/`."""
    configured = os.environ.get(MIGRATIONS_DIR_VARIABLE)
    candidates = [Path(configured)] if configured else [PACKAGED_MIGRATIONS, SOURCE_MIGRATIONS]
    for candidate in candidates:
        if (candidate / "env.py").is_file():
            return candidate
    searched = ", ".join(str(candidate) for candidate in candidates)
    raise FileNotFoundError(f"CTMS migrations not found (looked in {searched})")


def release_revisions() -> dict[str, str | None]:
    """This release's revisions, each with its parent (None for the first), as the files of
    `versions/` assign them."""
    parents: dict[str, str | None] = {}
    for path in sorted((script_location() / "versions").glob("*.py")):
        assigned = _module_constants(path, ("revision", "down_revision"))
        revision = assigned.get("revision")
        if isinstance(revision, str):
            down = assigned.get("down_revision")
            parents[revision] = down if isinstance(down, str) else None
    return parents


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values a module assigns to `names` at its top level (`x = ...` or `x: T = ...`)."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            if not isinstance(node.targets[0], ast.Name):
                continue
            target, value = node.targets[0].id, node.value
        else:
            continue
        if target in names and value is not None:
            found[target] = ast.literal_eval(value)
    return found


def release_head(parents: dict[str, str | None]) -> str:
    """The one revision no other revision builds on (CTMS keeps one linear history)."""
    heads = set(parents) - {parent for parent in parents.values() if parent is not None}
    if len(heads) != 1:
        raise RuntimeError(f"the migration scripts must have one head, not {sorted(heads)}")
    return heads.pop()


def verdict(url: str) -> Verdict:
    """May this release run on the database at `url`? (`startup_verdict` on what the database holds.)
    Reads only: a role without DDL rights can ask."""
    parents = release_revisions()
    head = release_head(parents)
    lineage: set[str] = set()
    step: str | None = head
    while step is not None and step not in lineage:
        lineage.add(step)
        step = parents.get(step)
    database_revisions, history = run_in_private_loop(_read_revisions(url))
    return startup_verdict(database_revisions, head=head, lineage=lineage, history=history)


async def _read_revisions(url: str) -> tuple[list[str], dict[str, RecordedRevision]]:
    """The revisions in `alembic_version` and the rows of `schema_history` (none where a table is
    missing: a database never migrated, or one older than revision 0006)."""
    engine = create_async_engine(
        async_url(url), poolclass=pool.NullPool, connect_args=connect_args("ctms-schema-check")
    )
    try:
        async with engine.connect() as connection:
            has_versions, has_history = (
                await connection.execute(
                    text(
                        "SELECT to_regclass('alembic_version') IS NOT NULL,"
                        f" to_regclass('{schema_history.name}') IS NOT NULL"
                    )
                )
            ).one()
            revisions: list[str] = []
            if has_versions:
                rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
                revisions = [row.version_num for row in rows]
            history: dict[str, RecordedRevision] = {}
            if has_history:
                for row in await connection.execute(select(schema_history)):
                    history[row.revision] = RecordedRevision(
                        row.revision, row.down_revision, row.expand_only
                    )
            return revisions, history
    finally:
        await engine.dispose()


def run_in_private_loop(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Run `coroutine` on a new event loop in a worker thread: the same whether or not the caller is
    inside a running loop (a server factory is), and the caller's loop is never touched."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctms-schema") as executor:
        return executor.submit(asyncio.run, coroutine).result()
