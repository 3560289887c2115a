#!/usr/bin/env python3
"""Flag destructive operations in alembic revisions: the rolling-deploy check of docs/contract.md §1.6.

CTMS deploys with the previous release still running while `ctms db upgrade` runs, so every revision must
keep working with the previous release's code (expand), and removing what that code still uses waits
for a later release (contract). This check reads the revision files (without importing them) and lists
every operation in an `upgrade()` that the previous release's code may not survive:

* `drop_table`, `drop_column`, `drop_constraint`, `drop_index`, `rename_table`: old code still reads or
  writes the thing. `drop_index` is included because the check cannot tell a unique index (whose
  violations old code turns into 409 conflicts) from a plain one, and losing a hot-path index degrades
  the running release; dropping one deliberately costs one marker line;
* `alter_column` with `type_=` (type change), `new_column_name=` (rename) or `nullable=False` (old code
  may insert without the column);
* `add_column` of a NOT NULL column without `server_default` (old code inserts rows without it);
* `execute()` of literal SQL containing DROP, RENAME, TRUNCATE or ALTER ... TYPE.

A revision that is a deliberate contract step says so with a comment line `# contract: <reason>` (or a
`contract: <reason>` line in its docstring); its findings are then accepted. That marker is declared once,
in `ctms_adapters.postgres.schema_revisions.contract_reason`, which `ctms db upgrade` also uses to record
whether each revision only adds (the start-up rules of docs/adr/0006-schema-revisions-at-start.md). `downgrade()` is exempt:
undoing a revision is destructive by nature. Helper functions count when `upgrade()` calls them.

Usage: `python scripts/check_migrations.py [--versions-dir migrations/versions] [--since REVISION]`;
`--since` checks only the revisions that come after REVISION (the last released head). Exit status: 0
clean, 1 findings, 2 unreadable revisions or an unknown `--since`.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


def _load_revision_rules() -> ModuleType:
    """`ctms_adapters.postgres.schema_revisions`, where the contract marker is declared, loaded from
    its file: the module needs only the standard library, and the lint environment has neither CTMS
    nor the dependencies its packages import installed."""
    path = Path(__file__).resolve().parents[1] / "src/ctms_adapters/postgres/schema_revisions.py"
    spec = importlib.util.spec_from_file_location("ctms_schema_revisions", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


contract_reason: Callable[[str], str | None] = _load_revision_rules().contract_reason

DEFAULT_VERSIONS_DIR = Path(__file__).resolve().parents[1] / "migrations" / "versions"

ALWAYS_DESTRUCTIVE = {
    "drop_table": "drops a table the running release may still use",
    "drop_column": "drops a column the running release may still read or write",
    "drop_constraint": "drops a constraint the running release may rely on",
    "drop_index": "drops an index (it may be unique, or serve the running release's queries)",
    "rename_table": "renames a table the running release still uses under its old name",
}
_DESTRUCTIVE_SQL = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|CONSTRAINT|INDEX|TYPE|SCHEMA|VIEW)|RENAME\b|TRUNCATE\b"
    r"|ALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b|SET\s+NOT\s+NULL)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Revision:
    path: Path
    revision: str
    down_revisions: tuple[str, ...]
    contract_reason: str | None
    tree: ast.Module


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    revision: str
    operation: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.revision}: {self.operation}: {self.why}"


class RevisionError(ValueError):
    """A revision file the check cannot read."""


def _assigned(tree: ast.Module, name: str) -> ast.expr | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return node.value
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            return node.value
    return None


def read_revision(path: Path) -> Revision:
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise RevisionError(f"{path}: not valid Python: {error}") from error
    revision_node = _assigned(tree, "revision")
    if revision_node is None:
        raise RevisionError(f"{path}: no `revision = ...` assignment")
    try:
        revision = ast.literal_eval(revision_node)
        down = ast.literal_eval(_assigned(tree, "down_revision") or ast.Constant(None))
    except ValueError as error:
        raise RevisionError(f"{path}: revision ids must be literals") from error
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    else:
        downs = tuple(down)
    return Revision(path, str(revision), downs, contract_reason(source), tree)


def read_revisions(versions_dir: Path) -> list[Revision]:
    return [read_revision(path) for path in sorted(versions_dir.glob("*.py"))]


def newer_than(revisions: Sequence[Revision], base: str) -> list[Revision]:
    """The revisions that descend from `base` (exclusive)."""
    known = {revision.revision for revision in revisions}
    if base not in known:
        raise RevisionError(f"unknown base revision {base!r} (known: {', '.join(sorted(known))})")
    newer: set[str] = set()
    grew = True
    while grew:
        grew = False
        for revision in revisions:
            if revision.revision not in newer and any(
                down == base or down in newer for down in revision.down_revisions
            ):
                newer.add(revision.revision)
                grew = True
    return [revision for revision in revisions if revision.revision in newer]


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _upgrade_bodies(tree: ast.Module) -> Iterator[ast.AST]:
    """`upgrade()` and every module-level function it calls, directly or not (never `downgrade`)."""
    functions = _functions(tree)
    pending, seen = ["upgrade"], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in functions or name == "downgrade":
            continue
        seen.add(name)
        yield functions[name]
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                pending.append(node.func.id)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _column_not_null_without_default(call: ast.Call) -> bool:
    """`add_column(table, sa.Column(..., nullable=False))` with no `server_default`."""
    for argument in call.args:
        if isinstance(argument, ast.Call) and (
            (isinstance(argument.func, ast.Attribute) and argument.func.attr == "Column")
            or (isinstance(argument.func, ast.Name) and argument.func.id == "Column")
        ):
            nullable = _keyword(argument, "nullable")
            primary = _keyword(argument, "primary_key")
            not_null = _is_false(nullable) or (
                isinstance(primary, ast.Constant) and primary.value is True
            )
            if not_null and _keyword(argument, "server_default") is None:
                return True
    return False


def _sql_text(call: ast.Call) -> str:
    parts = []
    for argument in call.args:
        for node in ast.walk(argument):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts.append(node.value)
    return " ".join(parts)


def findings_in(revision: Revision) -> list[Finding]:
    found: list[Finding] = []

    def flag(call: ast.Call, operation: str, why: str) -> None:
        found.append(Finding(revision.path, call.lineno, revision.revision, operation, why))

    for body in _upgrade_bodies(revision.tree):
        for node in ast.walk(body):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr  # op.x(...) or batch_op.x(...)
            if name in ALWAYS_DESTRUCTIVE:
                flag(node, name, ALWAYS_DESTRUCTIVE[name])
            elif name == "alter_column":
                if _keyword(node, "type_") is not None:
                    flag(node, "alter_column(type_=...)", "changes a column's type")
                if _keyword(node, "new_column_name") is not None:
                    flag(node, "alter_column(new_column_name=...)", "renames a column")
                if _is_false(_keyword(node, "nullable")):
                    flag(
                        node,
                        "alter_column(nullable=False)",
                        "makes a column NOT NULL (the running release may insert without it)",
                    )
            elif name == "add_column" and _column_not_null_without_default(node):
                flag(
                    node,
                    "add_column(NOT NULL, no server_default)",
                    "the running release inserts rows without this column",
                )
            elif name == "execute":
                match = _DESTRUCTIVE_SQL.search(_sql_text(node))
                if match:
                    flag(node, f"execute({match.group(0).upper()!r})", "destructive literal SQL")
    return found


def check(versions_dir: Path, since: str | None = None) -> tuple[list[Finding], list[Revision]]:
    """Unaccepted findings, and the contract revisions whose findings were accepted."""
    revisions = read_revisions(versions_dir)
    if since is not None:
        revisions = newer_than(revisions, since)
    findings: list[Finding] = []
    accepted: list[Revision] = []
    for revision in revisions:
        found = findings_in(revision)
        if found and revision.contract_reason is not None:
            accepted.append(revision)
        else:
            findings.extend(found)
    return findings, accepted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--versions-dir", type=Path, default=DEFAULT_VERSIONS_DIR)
    parser.add_argument("--since", help="check only revisions after this one (last released head)")
    options = parser.parse_args(argv)
    try:
        findings, accepted = check(options.versions_dir, options.since)
    except (RevisionError, OSError) as error:
        print(f"check_migrations: {error}", file=sys.stderr)
        return 2
    for revision in accepted:
        print(f"accepted contract step {revision.revision}: {revision.contract_reason}")
    if not findings:
        print("check_migrations: no destructive operation in an expand revision")
        return 0
    print("Destructive operations in revisions not marked as contract steps:", file=sys.stderr)
    for finding in findings:
        print(f"  {finding}", file=sys.stderr)
    print(
        "Split the change (expand now, contract in a later release) or, for a deliberate contract"
        " step, add a line `# contract: <reason>` to the revision (see docs/deployment.md).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
