"""The web and worker processes under a role without DDL rights (docs/deployment.md, "Database roles").

The roles and grants are made by running the two SQL blocks of docs/deployment.md, with unique role and
database names (roles are cluster-wide), then `ctms db upgrade` runs as the owner role, and the API, an
administration command and a sync pass run as the runtime role.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from ctms_adapters.postgres.migrations import current, head, upgrade
from ctms_core.domain.inputs import parse_contact_input
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.api_clients import ClientCredentials
from ctms_core.services.sync import SyncService
from ctms_entrypoints.cli.main import cli
from ctms_entrypoints.container import (
    acoustic_gateway_from_settings,
    build_container,
    sync_policy_from_settings,
)
from ctms_entrypoints.runtime import ensure_runnable_schema
from tests.http_harness import make_settings
from tests.support.acoustic_sync import LIST_ID, NEWSLETTERS, PRODUCTS, WAITLISTS
from tests.support.database import to_asyncpg_dsn
from tests.support.fake_acoustic import running_fake_acoustic
from tests.support.postgres_app import postgres_app

pytestmark = pytest.mark.integration

DEPLOYMENT_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
# The passwords of the guide's SQL (ignored by trust authentication, used by any other).
OWNER_PASSWORD, RUNTIME_PASSWORD = "owner-password", "runtime-password"


@dataclasses.dataclass(frozen=True)
class Deployment:
    owner_url: str
    runtime_url: str
    runtime_role: str


def roles_sql(block: str, *, owner: str, runtime: str, database: str) -> list[str]:
    """The statements of the guide's `<!-- roles-sql: BLOCK -->` SQL block, with our names."""
    guide = DEPLOYMENT_GUIDE.read_text(encoding="utf-8")
    found = re.search(rf"<!-- roles-sql: {block} -->\n```sql\n(.*?)```", guide, re.DOTALL)
    assert found, f"docs/deployment.md has no roles-sql block {block!r}"
    sql = "\n".join(line for line in found[1].splitlines() if not line.lstrip().startswith("--"))
    sql = re.sub(r"\bctms_owner\b", owner, sql)
    sql = re.sub(r"\bctms_runtime\b", runtime, sql)
    sql = re.sub(r"\bctms\b", database, sql)
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def _execute(dsn: str, statements: list[str]) -> None:
    """One statement at a time (CREATE DATABASE refuses to run in a transaction block)."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(asyncio.run, run()).result()


def _url(admin_url: str, *, user: str, password: str, database: str) -> str:
    parsed = make_url(admin_url).set(username=user, password=password, database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def deployment(database_url: str) -> Iterator[Deployment]:
    """The guide's roles and database, migrated by the owner; all dropped afterwards."""
    suffix = secrets.token_hex(4)
    owner, runtime, database = f"ctms_owner_{suffix}", f"ctms_runtime_{suffix}", f"ctms_{suffix}"
    names = {"owner": owner, "runtime": runtime, "database": database}
    admin_dsn = to_asyncpg_dsn(database_url)
    try:
        _execute(admin_dsn, roles_sql("cluster", **names))
        superuser_on_database = to_asyncpg_dsn(
            make_url(database_url).set(database=database).render_as_string(hide_password=False)
        )
        _execute(superuser_on_database, roles_sql("database", **names))
        owner_url = _url(database_url, user=owner, password=OWNER_PASSWORD, database=database)
        upgrade(owner_url)  # `ctms db upgrade` as the owner role
        yield Deployment(
            owner_url,
            _url(database_url, user=runtime, password=RUNTIME_PASSWORD, database=database),
            runtime,
        )
    finally:
        _execute(
            admin_dsn,
            [
                f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f'DROP ROLE IF EXISTS "{runtime}"',
                f'DROP ROLE IF EXISTS "{owner}"',
            ],
        )


def test_the_runtime_role_passes_the_start_up_check(deployment: Deployment) -> None:
    assert current(deployment.runtime_url) == head()
    assert ensure_runnable_schema(deployment.runtime_url).runnable


async def test_the_api_works_under_the_runtime_role(deployment: Deployment) -> None:
    created = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["clients", "create", "runtime-role", "--email", "ops@example.com", "--json"],
        env={"CTMS_DB_URL": deployment.runtime_url, "CTMS_SECRET_KEY": "runtime-role"},
    )
    assert created.exit_code == 0, created.output
    credentials = ClientCredentials(**json.loads(created.output))
    async with postgres_app(deployment.runtime_url) as app:
        bearer = {"Authorization": f"Bearer {await app.token(credentials)}"}
        posted = await app.http.post(
            "/ctms",
            json={
                "email": {"primary_email": "runtime@example.com"},
                "newsletters": [{"name": "mozilla-foundation"}],
            },
            headers=bearer,
        )
        assert posted.status_code == 201, posted.text
        email_id = posted.json()["email"]["email_id"]
        patched = await app.http.patch(
            f"/ctms/{email_id}", json={"email": {"first_name": "Runtime"}}, headers=bearer
        )
        assert patched.status_code == 200, patched.text
        read = await app.http.get(f"/ctms/{email_id}", headers=bearer)
        assert read.json()["email"]["first_name"] == "Runtime"
        heartbeat = await app.http.get("/__heartbeat__")
        assert heartbeat.status_code == 200, heartbeat.text


async def test_a_sync_pass_works_under_the_runtime_role(deployment: Deployment) -> None:
    with running_fake_acoustic() as fake:
        settings = make_settings(
            db_url=deployment.runtime_url,
            acoustic_sync_feature_flag=True,
            acoustic_integration_feature_flag=True,
            acoustic_base_url=fake.base_url,
            acoustic_client_id=fake.client_id,
            acoustic_client_secret=fake.client_secret,
            acoustic_refresh_token=fake.refresh_token,
            acoustic_main_table_id=int(LIST_ID),
            acoustic_newsletter_table_id=int(NEWSLETTERS),
            acoustic_waitlist_table_id=int(WAITLISTS),
            acoustic_product_subscriptions_id=int(PRODUCTS),
        )
        container = build_container(settings)
        try:
            await container.contact_service().create(
                parse_contact_input(
                    {"email": {"primary_email": "queued@example.com"}}, require_email_id=False
                )
            )
            async with httpx.AsyncClient() as http:
                sync = SyncService(
                    container.uow_factory(),
                    AcousticDestination(
                        acoustic_gateway_from_settings(settings, http),
                        container.acoustic_admin_service().configuration,
                    ),
                    container.clock(),
                    sync_policy_from_settings(settings),
                )
                synced = 0
                while (stats := await sync.run_pass()).count_total:
                    synced += stats.counts.get("synced", 0)
        finally:
            await container.engine().dispose()
    assert synced >= 1
    assert fake.calls_of("AddRecipient")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id integer)",
        "CREATE TEMPORARY TABLE scratch (id integer)",
        "ALTER TABLE emails ADD COLUMN intruder integer",
        "DROP TABLE erasure_audit",
        "CREATE INDEX intruder_ix ON emails (first_name)",
        "TRUNCATE emails",
    ],
)
def test_the_runtime_role_is_refused_ddl(deployment: Deployment, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        _execute(to_asyncpg_dsn(deployment.runtime_url), [statement])
