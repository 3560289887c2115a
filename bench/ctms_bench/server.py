"""The API under test: `ctms serve` as a subprocess on a free port, and its credentials."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

HOST = "127.0.0.1"


def ctms_command() -> list[str]:
    """The `ctms` console script of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("ctms")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ctms")
    if found:
        return [found]
    return [sys.executable, "-c", "from ctms_entrypoints.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def base_environment(
    db_url: str, secret_key: str, data_dir: Path, concurrency: int
) -> dict[str, str]:
    """The production serving setup of docs/performance.md: a pool as large as the requests one process
    serves at once (`concurrency`), so no request pays for opening an overflow connection."""
    environment = {
        name: value for name, value in os.environ.items() if not name.upper().startswith("CTMS_")
    }
    environment.update(
        CTMS_DB_URL=db_url,
        CTMS_SECRET_KEY=secret_key,
        CTMS_DATA_DIR=str(data_dir),
        CTMS_DB_POOL_SIZE=str(concurrency),
    )
    return environment


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


def _run_ctms(environment: dict[str, str], *arguments: str) -> str:
    """`ctms ARGUMENTS...` to completion; its standard output, or an error with its standard error."""
    completed = subprocess.run(
        [*ctms_command(), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ctms {' '.join(arguments[:2])} failed:\n{completed.stderr}")
    return completed.stdout


def upgrade_database(environment: dict[str, str]) -> None:
    """`ctms db upgrade`, the deploy step before `ctms serve` (which never migrates a CTMS_DB_URL
    database)."""
    _run_ctms(environment, "db", "upgrade")


def create_client(environment: dict[str, str]) -> Credentials:
    """`ctms clients create ... --json` on the upgraded database."""
    name = f"bench-{secrets.token_hex(3)}"
    output = _run_ctms(
        environment, "clients", "create", name, "--email", "bench@example.com", "--json"
    )
    data = json.loads(output.strip().splitlines()[-1])
    return Credentials(data["client_id"], data["client_secret"])


class ApiServer:
    """`ctms serve --workers N` on a free port of 127.0.0.1, its output in a log file."""

    def __init__(self, environment: dict[str, str], workers: int, log_file: Path) -> None:
        self.port = free_port()
        self.workers = workers
        self.base_url = f"http://{HOST}:{self.port}"
        self._environment = {**environment, "CTMS_SERVER_PREFIX": self.base_url}
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        with self._log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *ctms_command(),
                    "serve",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self._environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ctms serve exited early; see {self._log_file}")
            try:
                if httpx.get(f"{self.base_url}/__lbheartbeat__", timeout=1).status_code == 200:
                    # Every worker answers once the port does only after all have started: give
                    # the others a moment too.
                    time.sleep(0.5 * (self.workers - 1))
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"ctms serve did not answer within {timeout:.0f} s; see {self._log_file}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def token(self, credentials: Credentials) -> str:
        response = httpx.post(
            f"{self.base_url}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
            },
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token
