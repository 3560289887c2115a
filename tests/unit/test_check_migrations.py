"""scripts/check_migrations.py: destructive operations in expand revisions fail CI (docs/contract.md §1.6)."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_migrations.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_migrations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_migrations", module)  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


check_migrations = _load_script()


def write_revision(
    directory: Path,
    revision: str,
    down: str | None,
    upgrade: str,
    *,
    downgrade: str = "pass",
    header: str = "",
) -> None:
    body = textwrap.dedent(
        '''\
        """Revision {revision}.
        {header}
        """
        import sqlalchemy as sa
        from alembic import op

        revision = {revision!r}
        down_revision = {down!r}


        def upgrade() -> None:
        {upgrade}


        def downgrade() -> None:
        {downgrade}
        '''
    ).format(
        revision=revision,
        down=down,
        header=header,
        upgrade=textwrap.indent(textwrap.dedent(upgrade), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade), "    "),
    )
    (directory / f"{revision}.py").write_text(body, encoding="utf-8")


def run(directory: Path, *args: str) -> int:
    code: int = check_migrations.main(["--versions-dir", str(directory), *args])
    return code


def test_the_repository_migrations_pass() -> None:
    """Every revision in migrations/versions is an expand step (or a marked contract step)."""
    assert check_migrations.main([]) == 0


def test_additive_revisions_pass_and_downgrades_are_exempt(tmp_path: Path) -> None:
    """Creating tables, nullable columns and indexes is fine; `downgrade()` may drop anything."""
    write_revision(
        tmp_path,
        "0001",
        None,
        """\
        op.create_table("t", sa.Column("id", sa.Integer(), primary_key=True))
        op.add_column("t", sa.Column("note", sa.Text(), nullable=True))
        op.add_column("t", sa.Column("flag", sa.Boolean(), nullable=False, server_default="false"))
        op.create_index("ix_t_note", "t", ["note"])
        op.execute("INSERT INTO t (id) VALUES (1)")
        """,
        downgrade='op.drop_table("t")',
    )
    assert run(tmp_path) == 0


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ('op.drop_table("t")', "drop_table"),
        ('op.drop_column("t", "note")', "drop_column"),
        ('op.drop_index("ix_t_note", table_name="t")', "drop_index"),
        ('op.drop_constraint("t_key", "t")', "drop_constraint"),
        ('op.rename_table("t", "u")', "rename_table"),
        ('op.alter_column("t", "note", type_=sa.String(10))', "alter_column(type_=...)"),
        ('op.alter_column("t", "note", new_column_name="n")', "alter_column(new_column_name=...)"),
        ('op.alter_column("t", "note", nullable=False)', "alter_column(nullable=False)"),
        (
            'op.add_column("t", sa.Column("x", sa.Integer(), nullable=False))',
            "add_column(NOT NULL, no server_default)",
        ),
        ('op.execute("ALTER TABLE t DROP COLUMN note")', "execute('DROP COLUMN')"),
        ('op.execute("ALTER TABLE t ALTER COLUMN note TYPE int")', "execute("),
        (
            'with op.batch_alter_table("t") as batch_op:\n    batch_op.drop_column("note")',
            "drop_column",
        ),
    ],
)
def test_each_destructive_operation_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str, operation: str
) -> None:
    """Every kind of destructive upgrade step fails the check, naming file, line and operation."""
    write_revision(tmp_path, "0001", None, statement)
    assert run(tmp_path) == 1
    findings, _ = check_migrations.check(tmp_path)
    assert [finding.operation[: len(operation)] for finding in findings] == [operation]
    assert findings[0].revision == "0001"
    assert f"0001.py:{findings[0].line}: 0001: {findings[0].operation}" in capsys.readouterr().err


def test_helpers_called_by_upgrade_are_checked(tmp_path: Path) -> None:
    """A drop hidden in a helper that `upgrade()` calls is found; one only `downgrade()` calls is not."""
    write_revision(tmp_path, "0001", None, "_shrink()\n", downgrade="_undo()\n")
    with (tmp_path / "0001.py").open("a", encoding="utf-8") as file:
        file.write(
            '\n\ndef _shrink() -> None:\n    op.drop_column("t", "a")\n'
            '\n\ndef _undo() -> None:\n    op.drop_table("u")\n'
        )
    findings, _ = check_migrations.check(tmp_path)
    assert [(finding.operation, finding.revision) for finding in findings] == [
        ("drop_column", "0001")
    ]


def test_a_marked_contract_step_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`# contract: <reason>` accepts a revision's destructive steps and reports the reason."""
    write_revision(
        tmp_path,
        "0001",
        None,
        '# contract: v2.1 stopped reading email.sfdc_id\nop.drop_column("email", "sfdc_id")',
    )
    write_revision(
        tmp_path,
        "0002",
        "0001",
        'op.drop_table("old")',
        header="contract: the old table is unused since release 2.0",
    )
    assert run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "accepted contract step 0001: v2.1 stopped reading email.sfdc_id" in out
    assert "accepted contract step 0002: the old table is unused since release 2.0" in out


def test_a_marker_without_a_reason_does_not_count(tmp_path: Path) -> None:
    write_revision(tmp_path, "0001", None, '# contract:\nop.drop_table("t")')
    assert run(tmp_path) == 1


def test_since_checks_only_newer_revisions(tmp_path: Path) -> None:
    """With `--since`, released revisions (the base and its ancestors) are not checked again."""
    write_revision(tmp_path, "0001", None, 'op.drop_table("a")')
    write_revision(tmp_path, "0002", "0001", 'op.drop_table("b")')
    write_revision(tmp_path, "0003", "0002", 'op.drop_table("c")')
    findings, _ = check_migrations.check(tmp_path, since="0002")
    assert [finding.revision for finding in findings] == ["0003"]
    assert run(tmp_path, "--since", "0003") == 0
    assert run(tmp_path, "--since", "0001") == 1


def test_an_unknown_base_or_unreadable_revision_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(tmp_path, "0001", None, "pass")
    assert run(tmp_path, "--since", "nope") == 2
    assert "unknown base revision 'nope'" in capsys.readouterr().err
    (tmp_path / "0002.py").write_text("revision = \n", encoding="utf-8")
    assert run(tmp_path) == 2
