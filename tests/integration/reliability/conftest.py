"""Fixtures of the fault-injection tests (issue #9, docs/contract.md §16.3).

`stoppable_database` is a PostgreSQL cluster of its own (the embedded server in a temporary directory),
so a test can stop and start it without disturbing the shared test database. It listens on its Unix
socket: the socket path depends only on the data directory, so the URL the application was started with
stays valid after a restart (a TCP cluster would come back on another free port).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctms_adapters.embedded_pg import EmbeddedPostgres
from ctms_adapters.postgres.migrations import upgrade


class StoppableDatabase:
    """A migrated private cluster that tests may stop and start again (same URL)."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedPostgres(data_dir, fsync=False, tcp=False)
        self.url = self.server.start()

    def stop(self) -> None:
        """Fast shutdown: PostgreSQL ends every open session, as a failover or a crash does."""
        self.server.stop()

    def start(self) -> None:
        url = self.server.start()
        assert url == self.url, (url, self.url)


@pytest.fixture(scope="module")
def stoppable_database() -> Iterator[StoppableDatabase]:
    # Not under pytest's tmp_path: as root the server runs as an unprivileged account, which must be
    # able to enter every parent of the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="ctms-reliability-pg-"))
    database: StoppableDatabase | None = None
    try:
        database = StoppableDatabase(data_dir)
        upgrade(database.url)
        yield database
    finally:
        if database is not None:
            database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
