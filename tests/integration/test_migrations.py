"""Migrations: they build exactly the schema of the models, and go down and up again cleanly."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from ctms_adapters.postgres.migrations import (
    check,
    current,
    downgrade,
    head,
    script_location,
    upgrade,
)
from ctms_entrypoints.runtime import upgrade_to_head_in_a_child_process
from tests.support.database import to_asyncpg_dsn

pytestmark = pytest.mark.integration


def _execute(dsn: str, *statements: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    # A private loop in a thread: pytest-asyncio owns this thread's loop.
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, run()).result()


@pytest.fixture
def blank_database_url(database_url: str) -> Iterator[str]:
    """A new empty database on the test server (the session's shared one stays at head)."""
    name = f"ctms_migrations_{secrets.token_hex(6)}"
    admin_dsn = to_asyncpg_dsn(database_url)
    _execute(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_builds_the_schema_of_the_models(blank_database_url: str) -> None:
    assert current(blank_database_url) is None
    upgrade(blank_database_url)
    assert current(blank_database_url) == head()
    assert check(blank_database_url) == []


def test_serve_migrates_in_a_child_process_and_reports_its_failure(blank_database_url: str) -> None:
    """`ctms serve` migrates without loading alembic into the serving process (its peak memory), and
    still stops on a failed migration."""
    upgrade_to_head_in_a_child_process(blank_database_url)
    assert check(blank_database_url) == []
    unreachable = make_url(blank_database_url).set(host="127.0.0.1", port=1)
    with pytest.raises(RuntimeError, match="migrating the database failed"):
        upgrade_to_head_in_a_child_process(unreachable.render_as_string(hide_password=False))


def test_downgrade_to_base_then_upgrade_again(blank_database_url: str) -> None:
    upgrade(blank_database_url)
    downgrade(blank_database_url, "base")
    assert current(blank_database_url) is None
    assert any(line.startswith("add_table: emails") for line in check(blank_database_url))
    upgrade(blank_database_url)
    assert current(blank_database_url) == head()
    assert check(blank_database_url) == []


def test_upgrade_is_idempotent(blank_database_url: str) -> None:
    upgrade(blank_database_url)
    upgrade(blank_database_url)
    assert current(blank_database_url) == head()


def test_check_reports_a_schema_that_drifted(blank_database_url: str) -> None:
    upgrade(blank_database_url)
    _execute(
        to_asyncpg_dsn(blank_database_url),
        "DROP INDEX bulk_read_index",
        "ALTER TABLE emails ALTER COLUMN email_lang TYPE varchar(10)",
    )
    differences = check(blank_database_url)
    assert "add_index: emails.bulk_read_index" in differences
    assert any("modify_type" in line and "email_lang" in line for line in differences)


async def test_the_helpers_work_inside_a_running_event_loop(blank_database_url: str) -> None:
    """The CLI and embedders may call them from async code: they never touch the caller's loop."""
    upgrade(blank_database_url)
    assert current(blank_database_url) == head()


def test_migrations_form_one_linear_history() -> None:
    """Rolling deploys need one order of revisions: one head, no merge or branch points."""
    scripts = ScriptDirectory(str(script_location()))
    assert scripts.get_heads() == [head()]
    revisions = list(scripts.walk_revisions())
    assert all(not isinstance(revision.down_revision, tuple | list) for revision in revisions)
    assert [r.down_revision for r in revisions][-1] is None
