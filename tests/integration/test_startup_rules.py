"""The start-up rules on real PostgreSQL, through the real commands (docs/adr/0006-schema-revisions-at-start.md).

Processes never migrate an external database: `ctms serve`, `ctms sync` and the ASGI factory run on a
database at their own revision or ahead of it by expand-only revisions (a rollback), and refuse every other
one with a message naming the command that fixes it. The newer releases are simulated with a copy of our
migration scripts plus one revision, selected with `CTMS_MIGRATIONS_DIR` for the upgrade only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result

from ctms_adapters.postgres.migrations import current, head, upgrade
from ctms_adapters.postgres.schema_check import MIGRATIONS_DIR_VARIABLE, script_location
from ctms_entrypoints.cli.main import cli
from tests.support.database import throwaway_database, to_asyncpg_dsn

pytestmark = pytest.mark.integration

_MAIN = "from ctms_entrypoints.cli.main import main; main()"
SERVE = [sys.executable, "-c", _MAIN, "serve", "--workers", "1"]
SYNC = [sys.executable, "-c", _MAIN, "sync"]
FACTORY = [
    sys.executable,
    "-m",
    "uvicorn",
    "--factory",
    "ctms_entrypoints.asgi:create_app_from_environment",
    "--port",
    "0",
]
_START_TIMEOUT_S = 30.0

_NEWER_REVISION = '''"""A newer release's revision ({kind}).
{marker}
Revision ID: 9001_newer_release
Revises: {parent}
"""

import sqlalchemy as sa
from alembic import op

revision = "9001_newer_release"
down_revision = "{parent}"


def upgrade() -> None:
    {body}


def downgrade() -> None:
    pass
'''
EXPANSION = _NEWER_REVISION.format(
    kind="expand",
    marker="",
    parent="{parent}",
    body='op.add_column("emails", sa.Column("newer_release_note", sa.String(50), nullable=True))',
)
CONTRACTION = _NEWER_REVISION.format(
    kind="contract",
    marker="\ncontract: the newer release no longer reads emails.email_format\n",
    parent="{parent}",
    body='op.drop_column("emails", "email_format")',
)


@pytest.fixture
def fresh_url(database_url: str) -> Iterator[str]:
    """A new empty database on the test server."""
    with throwaway_database(database_url, origin="the integration tests' server") as url:
        yield url


def upgrade_as_a_newer_release(
    url: str, revision_source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """`ctms db upgrade` of a release whose scripts are ours plus `revision_source`; returns its head."""
    scripts = tmp_path / "newer-migrations"
    shutil.copytree(script_location(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9001_newer_release.py").write_text(
        revision_source.format(parent=head())
    )
    with monkeypatch.context() as patched:
        patched.setenv(MIGRATIONS_DIR_VARIABLE, str(scripts))
        upgrade(url)
        newer_head = current(url)
    assert newer_head == "9001_newer_release"
    assert head() != newer_head  # the scripts of this release again
    return newer_head


def one_revision_behind() -> str:
    parent = ScriptDirectory(str(script_location())).get_revision(head()).down_revision
    assert isinstance(parent, str)
    return parent


def _environment(url: str) -> dict[str, str]:
    environment = {
        **os.environ,
        "CTMS_DB_URL": url,
        "CTMS_SECRET_KEY": "startup-rules",
        "CTMS_USE_MOZLOG": "false",
        "CTMS_ACOUSTIC_SYNC_FEATURE_FLAG": "false",
        "CTMS_BACKGROUND_METRICS_PORT": "0",
    }
    environment.pop(MIGRATIONS_DIR_VARIABLE, None)
    return environment


def refusal(command: list[str], url: str) -> subprocess.CompletedProcess[str]:
    """Run a process that must refuse to start: a process that starts instead runs until the
    timeout, which fails the test."""
    return subprocess.run(
        command,
        env=_environment(url),
        capture_output=True,
        text=True,
        timeout=_START_TIMEOUT_S,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(url: str) -> Iterator[str]:
    """`ctms serve` on `url`; yields its base URL once it answers, stops it after."""
    port = _free_port()
    process = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"ctms serve exited with {process.returncode}:\n{output}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/__lbheartbeat__", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "ctms serve never answered"
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def ctms(url: str, *args: str) -> Result:
    """`ctms ARGS...` in this process (for commands that return)."""
    environment = {"CTMS_DB_URL": url, "CTMS_SECRET_KEY": "startup-rules"}
    return CliRunner().invoke(cli, list(args), env=environment)


def create_client(url: str, name: str) -> tuple[str, str]:
    result = ctms(url, "clients", "create", name, "--email", f"{name}@example.com", "--json")
    assert result.exit_code == 0, result.output
    credentials = json.loads(result.output)
    return credentials["client_id"], credentials["client_secret"]


def test_the_api_serves_on_a_database_ahead_by_an_expand_only_revision(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The previous release redeployed after an expand-only upgrade (a rollback) reads and writes."""
    upgrade_as_a_newer_release(fresh_url, EXPANSION, tmp_path, monkeypatch)
    client_id, secret = create_client(fresh_url, "rollback")
    with serving(fresh_url) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        token = http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = http.post(
            "/ctms", json={"email": {"primary_email": "rollback@example.com"}}, headers=bearer
        )
        assert created.status_code == 201, created.text
        found = http.get("/ctms?primary_email=rollback@example.com", headers=bearer)
        assert [c["email"]["primary_email"] for c in found.json()] == ["rollback@example.com"]
        assert http.get("/__heartbeat__").status_code == 200
    assert current(fresh_url) == "9001_newer_release"  # serving changed no schema


def test_the_migration_job_of_a_rollback_does_nothing_on_an_expand_only_schema(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline that runs `ctms db upgrade` before every rollout can roll back."""
    upgrade_as_a_newer_release(fresh_url, EXPANSION, tmp_path, monkeypatch)
    result = ctms(fresh_url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Nothing to upgrade.")
    assert current(fresh_url) == "9001_newer_release"


@pytest.mark.parametrize("command", [SERVE, SYNC, FACTORY], ids=["serve", "sync", "asgi-factory"])
def test_a_database_one_revision_behind_is_refused_naming_the_upgrade(
    fresh_url: str, command: list[str]
) -> None:
    upgrade(fresh_url, one_revision_behind())
    refused = refusal(command, fresh_url)
    assert refused.returncode != 0
    assert "`ctms db upgrade`" in refused.stderr + refused.stdout
    assert current(fresh_url) == one_revision_behind()  # not migrated on start


def test_an_empty_database_is_refused_and_left_empty(fresh_url: str) -> None:
    refused = refusal(SERVE, fresh_url)
    assert refused.returncode == 10
    assert "no CTMS schema" in refused.stderr
    assert current(fresh_url) is None


@pytest.mark.parametrize("command", [SERVE, SYNC], ids=["serve", "sync"])
def test_a_database_ahead_by_a_contract_revision_is_refused(
    fresh_url: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade_as_a_newer_release(fresh_url, CONTRACTION, tmp_path, monkeypatch)
    refused = refusal(command, fresh_url)
    assert refused.returncode == 10
    assert "contract revision 9001_newer_release" in refused.stderr


def test_the_migration_job_of_an_older_release_refuses_a_contracted_schema(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade_as_a_newer_release(fresh_url, CONTRACTION, tmp_path, monkeypatch)
    result = ctms(fresh_url, "db", "upgrade")
    assert result.exit_code == 10
    assert "contract revision 9001_newer_release" in result.output


def test_an_admin_command_applies_the_same_rules(fresh_url: str) -> None:
    upgrade(fresh_url, one_revision_behind())
    result = CliRunner().invoke(
        cli, ["clients", "list"], env={"CTMS_DB_URL": fresh_url, "CTMS_SECRET_KEY": "x"}
    )
    assert result.exit_code == 10
    assert "`ctms db upgrade`" in result.output


def test_a_ctms_api_database_not_yet_adopted_is_refused_naming_the_adoption(
    fresh_url: str,
) -> None:
    async def make_it_look_like_ctms_api_v6() -> None:
        connection = await asyncpg.connect(to_asyncpg_dsn(fresh_url))
        try:
            await connection.execute(
                "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
                "INSERT INTO alembic_version VALUES ('fd04e56b249e');"
                "CREATE TABLE emails (email_id uuid PRIMARY KEY, primary_email varchar(255))"
            )
        finally:
            await connection.close()

    asyncio.run(make_it_look_like_ctms_api_v6())
    refused = refusal(SERVE, fresh_url)
    assert refused.returncode == 10
    assert "'fd04e56b249e'" in refused.stderr
    assert "`ctms db adopt`" in refused.stderr
    not_upgraded = ctms(fresh_url, "db", "upgrade")
    assert not_upgraded.exit_code == 10
    assert "`ctms db adopt`" in not_upgraded.output
    assert current(fresh_url) == "fd04e56b249e"


def test_a_serving_process_checks_the_schema_without_loading_alembic(fresh_url: str) -> None:
    """alembic is ~11 MB of a serving process's peak memory: the start-up check never imports it."""
    upgrade(fresh_url)
    program = (
        "import sys\n"
        "from ctms_entrypoints.asgi import create_app_from_environment\n"
        "create_app_from_environment()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program],
        env=_environment(fresh_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
