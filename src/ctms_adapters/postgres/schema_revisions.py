"""Which schema revisions a release can run on: the start-up rules of docs/adr/0006-schema-revisions-at-start.md.

Two rules live here, each declared once:

* what makes a revision a *contract* step: a `# contract: <reason>` line in its file (or a
  `contract: <reason>` line in its docstring). Every other revision only adds (expand). The migration
  checker (`scripts/check_migrations.py`) and the schema history that `ctms db upgrade` writes both ask
  `contract_reason()`;
* whether a process may start on a database: `startup_verdict()`, on plain data (the database's revision,
  this release's revisions, and the database's `schema_history`).

An older release cannot know a newer release's scripts, so what it needs to know about them (their
parent, whether they only add) is read from the database's `schema_history` table, written for every
revision `ctms db upgrade` applies.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

_CONTRACT_MARKER = re.compile(r"^[ \t]*#?[ \t]*contract:[ \t]*(?P<reason>\S[^\n]*)$", re.MULTILINE)


def contract_reason(source: str) -> str | None:
    """The reason given by a revision file's `# contract: <reason>` line; None for an expand-only
    revision (one without that line)."""
    marker = _CONTRACT_MARKER.search(source)
    return marker["reason"].strip() if marker else None


@dataclass(frozen=True, slots=True)
class RecordedRevision:
    """A row of `schema_history`: a revision applied to the database, as the release that applied it
    described it."""

    revision: str
    down_revision: str | None
    expand_only: bool


class SchemaState(enum.Enum):
    CURRENT = "current"
    AHEAD_BY_EXPANSIONS = "ahead by expand-only revisions"
    BEHIND = "behind"
    AHEAD_BY_CONTRACT = "ahead by a contract revision"
    NOT_ADOPTED = "not a CTMS schema"
    UNRELATED = "unrelated history"


RUNNABLE = frozenset({SchemaState.CURRENT, SchemaState.AHEAD_BY_EXPANSIONS})


@dataclass(frozen=True, slots=True)
class Verdict:
    state: SchemaState
    message: str

    @property
    def runnable(self) -> bool:
        return self.state in RUNNABLE


def startup_verdict(
    database_revisions: Collection[str],
    *,
    head: str,
    lineage: Collection[str],
    history: Mapping[str, RecordedRevision],
) -> Verdict:
    """Whether a release whose newest revision is `head` may run on a database whose `alembic_version`
    holds `database_revisions`.

    `lineage` is `head` and every revision before it (this release's scripts); `history` is the
    database's `schema_history` by revision (empty when the table does not exist).

    Rules: the database at `head` → run. At an older revision of ours, or at none → refuse: the deploy
    must run `ctms db upgrade` first. At a newer revision whose recorded chain leads back to `head`
    through expand-only revisions → run (a newer release upgraded the schema and this one is its
    rollback). Through a contract revision → refuse: that revision removed or changed something this
    release uses. A revision neither we nor `schema_history` know → refuse: the database was not
    migrated by CTMS (a ctms-api database is adopted with `ctms db adopt`). Anything else (several
    heads, a recorded chain that does not reach `head`) → refuse.
    """
    upgrade_hint = "run `ctms db upgrade` (once, before the rollout; see docs/deployment.md)"
    if not database_revisions:
        return Verdict(
            SchemaState.BEHIND,
            f"The database has no CTMS schema (no revision); this release needs {head}: "
            + upgrade_hint
            + ".",
        )
    if len(database_revisions) > 1:
        return Verdict(
            SchemaState.UNRELATED,
            f"The database is at several revisions at once ({', '.join(sorted(database_revisions))});"
            " CTMS keeps one linear history: repair it with `ctms db history` and `ctms db stamp`.",
        )
    [revision] = database_revisions
    if revision == head:
        return Verdict(
            SchemaState.CURRENT, f"The database schema is at {head}, this release's own."
        )
    if revision in lineage:
        return Verdict(
            SchemaState.BEHIND,
            f"The database schema is at {revision}, behind this release's {head}: {upgrade_hint}.",
        )
    if revision not in history:
        return Verdict(
            SchemaState.NOT_ADOPTED,
            f"The database's schema revision {revision!r} is not one CTMS knows or recorded: it was not"
            " migrated by CTMS. A ctms-api database is taken over with `ctms db adopt` (see"
            " docs/cutover.md); an empty database is prepared with `ctms db upgrade`.",
        )
    newer: list[RecordedRevision] = []
    step: str | None = revision
    while step != head:
        recorded = history.get(step) if step is not None else None
        if recorded is None or step in lineage or any(r.revision == step for r in newer):
            return Verdict(
                SchemaState.UNRELATED,
                f"The database schema is at {revision}, whose recorded history does not lead to this"
                f" release's {head} (it stops at {step!r}): this release cannot run on it; see"
                " `ctms db history`.",
            )
        newer.append(recorded)
        step = recorded.down_revision
    newer.reverse()  # oldest first
    contracts = [recorded.revision for recorded in newer if not recorded.expand_only]
    if contracts:
        return Verdict(
            SchemaState.AHEAD_BY_CONTRACT,
            f"The database schema is at {revision}, ahead of this release's {head} by the contract"
            f" revision {contracts[0]}, which removes or changes what this release uses: this release"
            " cannot run on it. Deploy a release that includes that revision (see docs/deployment.md).",
        )
    return Verdict(
        SchemaState.AHEAD_BY_EXPANSIONS,
        f"The database schema is at {revision}, ahead of this release's {head} by expand-only"
        f" revisions ({', '.join(r.revision for r in newer)}), which this release runs on (a"
        " rollback, or the previous release during a rollout).",
    )
