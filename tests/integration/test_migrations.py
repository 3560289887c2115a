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
    history,
    is_expand_only,
    script_location,
    stamp,
    upgrade,
)
from ctms_core.domain.waitlist_rules import SEEDED_WAITLIST_FIELD_RULES, WaitlistFieldRule
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


def test_upgrade_seeds_the_waitlist_field_rules_the_core_declares(blank_database_url: str) -> None:
    """Migration 0008 stores v3.3's rules (docs/contract.md §5.9), equal to the core's declaration."""
    upgrade(blank_database_url)

    async def read() -> list[WaitlistFieldRule]:
        connection = await asyncpg.connect(to_asyncpg_dsn(blank_database_url), timeout=10)
        try:
            rows = await connection.fetch(
                "SELECT waitlist, field, max_length, required FROM waitlist_field_rules"
            )
        finally:
            await connection.close()
        return [WaitlistFieldRule(**dict(row)) for row in rows]

    with ThreadPoolExecutor(max_workers=1) as executor:
        stored = executor.submit(asyncio.run, read()).result()
    assert sorted(stored) == sorted(SEEDED_WAITLIST_FIELD_RULES)


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


def _recorded(url: str) -> dict[str, tuple[str | None, bool]]:
    """schema_history as (down_revision, expand_only) by revision, via `ctms db history`'s reader."""
    return {
        line.revision: (line.down_revision, line.expand_only)
        for line in history(url)
        if line.applied_at is not None
    }


def test_the_history_is_backfilled_when_upgrading_a_database_stamped_before_it(
    blank_database_url: str,
) -> None:
    """`ctms db adopt` stamps our 0005 and upgrades: the new table then holds every revision."""
    scripts = ScriptDirectory(str(script_location()))
    upgrade(blank_database_url, "0005_acoustic_sync")
    _execute(
        to_asyncpg_dsn(blank_database_url),
        "UPDATE alembic_version SET version_num = '0005_acoustic_sync'",
    )
    upgrade(blank_database_url)
    expected = {
        script.revision: (script.down_revision, is_expand_only(script))
        for script in scripts.walk_revisions()
    }
    assert _recorded(blank_database_url) == expected
    assert all(expand_only for _, expand_only in expected.values())  # no contract step yet


def test_the_history_follows_downgrades_and_stamps(blank_database_url: str) -> None:
    upgrade(blank_database_url)
    _execute(
        to_asyncpg_dsn(blank_database_url),
        "INSERT INTO schema_history (revision, down_revision, expand_only)"
        f" VALUES ('9001_newer_release', '{head()}', true)",
    )
    stamp(blank_database_url, "0005_acoustic_sync")
    recorded = _recorded(blank_database_url)
    assert head() not in recorded and "0005_acoustic_sync" in recorded
    assert "9001_newer_release" in recorded  # a newer release's row is not ours to remove
    stamp(blank_database_url, head())
    assert head() in _recorded(blank_database_url)
    downgrade(blank_database_url, "0006_schema_history")
    downgrade(blank_database_url, "0005_acoustic_sync")
    assert _recorded(blank_database_url) == {}  # the table went with its revision
