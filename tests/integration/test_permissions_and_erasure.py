"""Permissions and erasure on PostgreSQL (docs/contract.md §13.1, §13.2, §14.1): the `ctms roles`,
`ctms permissions`, `ctms clients grant|revoke|show`, `ctms delete-bulk` and `ctms audit erasures`
commands, and the HTTP permission checks and erasure audit over the real adapters."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres.migrations import upgrade
from ctms_core.domain.erasure import derive_erasure_salt, erasure_hash
from ctms_core.domain.permissions import STANDARD_PERMISSIONS
from ctms_entrypoints.cli.main import cli
from tests.integration.test_migrations import _execute
from tests.samples import sample
from tests.support.database import to_asyncpg_dsn
from tests.support.postgres_app import postgres_app

pytestmark = pytest.mark.integration

SECRET_KEY = "cli-tests"
SALT = "erasure-salt-for-tests"


class Ctms(Protocol):
    async def __call__(self, *args: str, input: str | None = None) -> Result: ...


@pytest.fixture
def ctms(database_url: str, empty_database: AsyncEngine) -> Ctms:
    """`ctms ARGS...` on the emptied test database, reseeded with the standard permissions and the
    admin role (what migration 0002 creates)."""
    runner = CliRunner()
    environment = {
        "CTMS_DB_URL": database_url,
        "CTMS_SECRET_KEY": SECRET_KEY,
        "CTMS_ERASURE_HASH_SALT": SALT,
    }

    async def invoke(*args: str, input: str | None = None) -> Result:
        return await asyncio.to_thread(runner.invoke, cli, list(args), env=environment, input=input)

    return invoke


@pytest.fixture
async def seeded(ctms: Ctms) -> Ctms:
    for name in STANDARD_PERMISSIONS:
        assert (await ctms("permissions", "create", name)).exit_code == 0
    assert (await ctms("roles", "create", "admin", "Passes every check")).exit_code == 0
    assert (await ctms("roles", "grant", "admin", "admin")).exit_code == 0
    return ctms


async def test_migration_0002_seeds_the_standard_permissions_and_admin_role(
    database_url: str,
) -> None:
    """On a freshly migrated database (not the emptied shared one) the seeds are there."""
    dsn = to_asyncpg_dsn(database_url)
    name = f"ctms_seed_check_{secrets.token_hex(4)}"
    _execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    try:
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        runner = CliRunner()
        env = {"CTMS_DB_URL": url, "CTMS_SECRET_KEY": SECRET_KEY}
        listed = await asyncio.to_thread(runner.invoke, cli, ["permissions", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        for permission in STANDARD_PERMISSIONS:
            assert f"- {permission}:" in listed.output
        admin = await asyncio.to_thread(runner.invoke, cli, ["roles", "show", "admin"], env=env)
        assert "Permissions:\n- admin\n" in admin.output
    finally:
        _execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_role_and_permission_administration(seeded: Ctms) -> None:
    ctms = seeded
    assert (await ctms("clients", "create", "basket", "-e", "basket@example.com")).exit_code == 0

    created = await ctms("roles", "create", "viewer", "Reads contacts")
    assert (created.exit_code, created.output.strip()) == (0, "✅ Created role 'viewer'.")
    assert (await ctms("roles", "create", "viewer")).exit_code == 10
    granted = await ctms("roles", "grant", "viewer", "contacts:read")
    assert granted.exit_code == 0 and "✅" in granted.output
    assert (await ctms("roles", "grant", "viewer", "contacts:read")).exit_code == 10
    assert (await ctms("roles", "grant", "viewer", "nope")).exit_code == 4
    assert (await ctms("roles", "grant", "nobody", "contacts:read")).exit_code == 4

    assert (await ctms("clients", "grant", "basket", "viewer")).exit_code == 0
    again = await ctms("clients", "grant", "basket", "viewer")
    assert again.exit_code == 0 and "already has role" in again.output
    assert (await ctms("clients", "grant", "nobody", "viewer")).exit_code == 4

    shown = await ctms("clients", "show", "basket")
    assert shown.exit_code == 0
    assert "Client ID: id_basket" in shown.output
    assert "Enabled: Yes" in shown.output
    assert "Roles:\n- viewer\n" in shown.output
    role = await ctms("roles", "show", "viewer")
    assert "Permissions:\n- contacts:read\n" in role.output
    assert "API clients:\n- id_basket\n" in role.output
    listed = await ctms("roles", "list")
    assert "- admin: Passes every check" in listed.output
    assert "- viewer: Reads contacts" in listed.output

    in_use = await ctms("roles", "delete", "-y", "viewer")
    assert in_use.exit_code == 10
    assert "ctms clients revoke id_basket viewer" in in_use.output
    assert "ctms roles revoke viewer contacts:read" in in_use.output
    granted_permission = await ctms("permissions", "delete", "-y", "contacts:read")
    assert granted_permission.exit_code == 10
    assert "ctms roles revoke viewer contacts:read" in granted_permission.output

    cancelled = await ctms("clients", "revoke", "basket", "viewer", input="n\n")
    assert cancelled.exit_code == 0 and "Operation cancelled." in cancelled.output
    assert (await ctms("clients", "revoke", "-y", "basket", "viewer")).exit_code == 0
    assert (await ctms("clients", "revoke", "-y", "basket", "viewer")).exit_code == 10
    assert "No roles assigned." in (await ctms("clients", "show", "basket")).output
    assert (await ctms("roles", "revoke", "-y", "viewer", "contacts:read")).exit_code == 0
    assert (await ctms("roles", "revoke", "-y", "viewer", "contacts:read")).exit_code == 10
    assert (await ctms("roles", "delete", "-y", "viewer")).exit_code == 0
    assert (await ctms("roles", "show", "viewer")).exit_code == 4

    assert (await ctms("permissions", "create", "custom:thing", "Custom")).exit_code == 0
    assert (await ctms("permissions", "create", "custom:thing")).exit_code == 10
    assert (await ctms("permissions", "create", "has space")).exit_code == 2
    assert (await ctms("permissions", "delete", "-y", "custom:thing")).exit_code == 0
    assert (await ctms("permissions", "delete", "-y", "custom:thing")).exit_code == 4


async def _seed_contacts(database_url: str, *bodies: dict[str, object]) -> list[str]:
    async with postgres_app(database_url, erasure_hash_salt=SALT) as app:
        credentials = await app.create_client("seeder")
        token = await app.token(credentials)
        ids = []
        for body in bodies:
            response = await app.http.post(
                "/ctms", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["email"]["email_id"])
        return ids


async def test_delete_bulk_erases_reports_and_audits(
    ctms: Ctms, database_url: str, empty_database: AsyncEngine, tmp_path: Path
) -> None:
    maximal, minimal = sample("maximal"), sample("minimal")
    [maximal_id, minimal_id] = await _seed_contacts(database_url, maximal, minimal)
    maximal_address = maximal["email"]["primary_email"]
    minimal_address = minimal["email"]["primary_email"]
    email_file = tmp_path / "addresses.txt"
    email_file.write_text(f"{maximal_address.upper()}  \n\nmissing@example.com\n")

    result = await ctms(
        "delete-bulk", "--email-file", str(email_file), "--email", minimal_address, "-y"
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        f"DELETING {maximal_address.upper()} (ctms id: {maximal_id}). fxa: YES. mofo: YES." in lines
    )
    assert f"DELETING {minimal_address} (ctms id: {minimal_id})." in lines
    assert "missing@example.com not found in CTMS" in lines
    assert lines[-1] == "Deleted 2 contacts; 1 addresses not found."
    async with empty_database.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM emails")) == 0
        rows = (await connection.execute(text("SELECT * FROM erasure_audit"))).mappings().all()
    assert {str(row["email_id"]) for row in rows} == {maximal_id, minimal_id}
    assert all(row["client_id"] is None for row in rows)
    salt = derive_erasure_salt(SALT)
    assert {row["email_hash"] for row in rows} == {
        erasure_hash(maximal_address, salt),
        erasure_hash(minimal_address, salt),
    }
    for row in rows:
        assert "@" not in json.dumps({k: str(v) for k, v in row.items()})

    audit = await ctms("audit", "erasures", "--json")
    assert audit.exit_code == 0, audit.output
    listed = json.loads(audit.output)
    assert {record["email_id"] for record in listed} == {maximal_id, minimal_id}
    assert "@" not in audit.output
    by_address = json.loads(
        (await ctms("audit", "erasures", "--json", "--email", minimal_address)).output
    )
    assert [record["email_id"] for record in by_address] == [minimal_id]
    future = await ctms("audit", "erasures", "--since", "2999-01-01")
    assert future.output.strip() == "No erasures found."
    assert (await ctms("audit", "erasures", "--since", "yesterday")).exit_code == 2
    text_listing = await ctms("audit", "erasures")
    assert "(command line)" in text_listing.output
    # Acoustic sync is off here: no address was kept for it, and the trail says so.
    assert {record["acoustic"] for record in listed} == {
        "address dropped after 0:00:00, not delivered"
    }
    assert text_listing.output.count("Acoustic: address dropped after 0:00:00, not delivered") == 2


async def test_delete_bulk_without_addresses_is_a_usage_error(ctms: Ctms) -> None:
    assert (await ctms("delete-bulk", "-y")).exit_code == 2


async def test_delete_bulk_can_be_declined(ctms: Ctms) -> None:
    declined = await ctms("delete-bulk", "--email", "x@example.com", input="n\n")
    assert declined.exit_code == 0 and "Operation cancelled." in declined.output


# --- HTTP on PostgreSQL ------------------------------------------------------------------------------


async def test_http_permissions_and_audit_on_postgres(seeded: Ctms, database_url: str) -> None:
    ctms = seeded
    async with postgres_app(database_url, erasure_hash_salt=SALT) as app:
        reader = await app.create_client("reader")
        deleter = await app.create_client("deleter")
        roleless = await app.create_client("roleless")
        boss = await app.create_client("boss")
    for command in (
        ("roles", "create", "viewer"),
        ("roles", "grant", "viewer", "contacts:read"),
        ("roles", "create", "eraser"),
        ("roles", "grant", "eraser", "contacts:delete"),
        ("clients", "grant", "reader", "viewer"),
        ("clients", "grant", "deleter", "eraser"),
        ("clients", "grant", "boss", "admin"),
    ):
        assert (await ctms(*command)).exit_code == 0, command

    for enforce in (False, True):
        async with postgres_app(
            database_url, erasure_hash_salt=SALT, enforce_permissions=enforce
        ) as app:
            tokens = {
                name: {"Authorization": f"Bearer {await app.token(credentials)}"}
                for name, credentials in (
                    ("reader", reader),
                    ("deleter", deleter),
                    ("roleless", roleless),
                    ("boss", boss),
                )
            }
            body = sample("minimal")
            address = body["email"]["primary_email"]

            refused = await app.http.post("/ctms", json=body, headers=tokens["reader"])
            assert refused.status_code == 403
            assert refused.json() == {"detail": "Permission(s) required: contacts:write"}
            roleless_write = await app.http.post("/ctms", json=body, headers=tokens["roleless"])
            created = roleless_write
            if enforce:
                assert roleless_write.status_code == 403
                created = await app.http.post("/ctms", json=body, headers=tokens["boss"])
            assert created.status_code == 201, created.text
            email_id = (
                roleless_write.json()["email"]["email_id"]
                if not enforce
                else created.json()["email"]["email_id"]
            )

            read = await app.http.get(f"/ctms/{email_id}", headers=tokens["reader"])
            assert read.status_code == 200
            denied = await app.http.get(f"/ctms/{email_id}", headers=tokens["deleter"])
            assert denied.status_code == 403
            assert denied.json() == {"detail": "Permission(s) required: contacts:read"}
            reader_delete = await app.http.delete(f"/ctms/{address}", headers=tokens["reader"])
            assert reader_delete.status_code == 403
            assert reader_delete.json() == {"detail": "Permission(s) required: contacts:delete"}
            deleted = await app.http.delete(f"/ctms/{address}", headers=tokens["deleter"])
            assert deleted.status_code == 200, deleted.text

            records = await app.container.erasure_audit_service().list(primary_email=address)
            assert records[-1].client_id == "id_deleter"
            assert str(records[-1].email_id) == email_id
            assert address.lower() not in repr(records).lower()
