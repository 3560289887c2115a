"""Process-level setup shared by the CLI commands: which database, which secret key.

With `CTMS_DB_URL` set, CTMS uses that database and never changes its schema: migrations are a deploy step
(`ctms db upgrade`), and a process only checks at start that the schema is one this release can run on
(docs/deployment.md, docs/adr/0006-schema-revisions-at-start.md). Without it, CTMS runs on the embedded
PostgreSQL in `CTMS_DATA_DIR/postgres` (docs/contract.md §15), migrated on start, and in that development mode also
keeps a generated `CTMS_SECRET_KEY` and the development API client's credentials in `CTMS_DATA_DIR` (files
readable only by their owner) so a restart keeps both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ctms_adapters.embedded_pg import EmbeddedPostgres
from ctms_adapters.postgres.schema_check import verdict
from ctms_adapters.postgres.schema_revisions import SchemaState, Verdict
from ctms_entrypoints.settings import Settings

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
DEV_CLIENT_FILE = "dev-client.json"

logger = logging.getLogger("ctms.schema")


class SchemaMismatchError(RuntimeError):
    """The database's schema is not one this release can run on; the message says what to do."""


def ensure_runnable_schema(url: str) -> Verdict:
    """Refuse (`SchemaMismatchError`) a database whose schema this release cannot run on: behind it,
    ahead of it by a contract revision, or not a CTMS schema. Reads only, so a runtime role without
    DDL rights can ask."""
    found = verdict(url)
    if not found.runnable:
        raise SchemaMismatchError(found.message)
    if found.state is SchemaState.AHEAD_BY_EXPANSIONS:
        logger.warning(found.message)
    return found


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings  # with `db_url` and `secret_key` filled in
    embedded: EmbeddedPostgres | None

    @property
    def development(self) -> bool:
        return self.embedded is not None


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _development_secret_key(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    _write_private(path, key + "\n")
    return key


def _prepare_data_dir(data_dir: Path) -> None:
    """Create CTMS's own data folder. As root the embedded server runs as an unprivileged user that must
    pass through this folder to its cluster, so root's folder is traversable (0711: others may enter,
    not list); the secrets inside stay 0600."""
    mode = 0o711 if os.geteuid() == 0 else 0o700
    data_dir.mkdir(parents=True, exist_ok=True, mode=mode)
    if os.geteuid() == 0 and data_dir.stat().st_uid == 0:
        data_dir.chmod(data_dir.stat().st_mode & 0o7777 | 0o111)


def upgrade_to_head(url: str) -> None:
    """Migrate the database of `url` to the head revision."""
    # Imported here: alembic costs the process ~7 MB when imported and ~5 MB more once it has run.
    from ctms_adapters.postgres.migrations import upgrade

    upgrade(url)


def upgrade_to_head_in_a_child_process(url: str) -> None:
    """`ctms db upgrade` in a short-lived child process (the URL passed in its environment, never on
    its command line): the API process (`ctms serve`) then never holds alembic, which is 12 MB of its
    peak memory (docs/performance.md). The child's errors go to stderr; a failure raises here."""
    environment = {**os.environ, "CTMS_DB_URL": url}
    program = "from ctms_entrypoints.cli.main import main; main()"
    command = [sys.executable, "-c", program, "db", "upgrade"]
    completed = subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, check=False)  # noqa: S603 - our own interpreter and module
    if completed.returncode != 0:
        raise RuntimeError(f"migrating the database failed (exit status {completed.returncode})")


@contextlib.contextmanager
def database_runtime(
    settings: Settings, *, ensure_schema: bool = True, migrate_in_a_child_process: bool = False
) -> Iterator[Runtime]:
    """Yield settings that point at a database; start (and later stop) the embedded one if no
    `CTMS_DB_URL` is configured. With `ensure_schema` (every command but `ctms db ...`), the embedded
    database is migrated to this release's head (in a child process with `migrate_in_a_child_process`,
    for the long-lived serving process) and an external one is checked, never migrated
    (`ensure_runnable_schema`)."""
    upgrade = upgrade_to_head_in_a_child_process if migrate_in_a_child_process else upgrade_to_head
    if settings.async_db_url is not None:
        if ensure_schema:
            ensure_runnable_schema(settings.async_db_url)
        yield Runtime(settings, None)
        return
    data_dir = settings.data_dir
    _prepare_data_dir(data_dir)
    embedded = EmbeddedPostgres(data_dir / "postgres")
    url = embedded.start()
    try:
        if ensure_schema:
            upgrade(url)
        resolved = dataclasses.replace(
            settings,
            db_url=url,
            secret_key=settings.secret_key or _development_secret_key(data_dir),
        )
        yield Runtime(resolved, embedded)
    finally:
        embedded.stop()


def read_development_client(data_dir: Path) -> dict[str, str] | None:
    path = data_dir / DEV_CLIENT_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None


def write_development_client(data_dir: Path, client_id: str, client_secret: str) -> None:
    _write_private(
        data_dir / DEV_CLIENT_FILE,
        json.dumps({"client_id": client_id, "client_secret": client_secret}) + "\n",
    )
