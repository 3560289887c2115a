"""CTMS processes as a deployment runs them (`ctms serve`, `ctms sync`, one-shot `ctms` commands), for
integration tests across processes. Every wait has a deadline; `stop_all` ends what is still running,
by PID, and belongs in a `finally`. Each process writes its output to a file shown when it misbehaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

CTMS = [sys.executable, "-c", "from ctms_entrypoints.cli.main import main; main()"]
START_TIMEOUT_S = 60.0  # importing and starting a process on a loaded 2-core machine
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CtmsProcess:
    """One `ctms ...` subprocess; `start()` may be called again after it ended (a restart)."""

    def __init__(self, name: str, arguments: list[str], environment: dict[str, str], logs: Path):
        self.name = name
        self.arguments = arguments
        self.environment = environment
        self.log_path = logs / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    async def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                *CTMS,
                *self.arguments,
                env=self.environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        assert self.process is not None
        try:
            return await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            message = f"{self.name} did not end in {timeout_s} s:\n{self.output()}"
            raise AssertionError(message) from None

    def ask_to_stop(self) -> None:
        """SIGTERM, as Kubernetes sends to stop a pod; `wait()` for the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def kill(self) -> int:
        """SIGKILL: the process dies wherever it is (an OOM kill, a lost node)."""
        assert self.process is not None
        self.process.kill()
        return await self.wait()

    async def stop_if_running(self) -> None:
        """For `finally`: SIGKILL this process (by its PID) if it still runs, and reap it."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)


class ApiProcess(CtmsProcess):
    """`ctms serve` with one uvicorn process on a fixed local port (kept across restarts)."""

    def __init__(self, name: str, environment: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        arguments = ["serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__(name, arguments, environment, logs)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start_and_wait_until_serving(self) -> None:
        await self.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while True:
                if not self.running:
                    raise AssertionError(f"{self.name} exited on start:\n{self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/__lbheartbeat__")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} never answered:\n{self.output()}")
                await asyncio.sleep(0.1)

    async def wait_until_refusing(self) -> None:
        """Wait until the port refuses connections: the process has stopped accepting new ones."""
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while True:
            try:
                _, writer = await asyncio.open_connection(*self.address)
            except OSError:
                return
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still accepts connections:\n{self.output()}")
            await asyncio.sleep(0.02)


async def run_ctms(environment: dict[str, str], *arguments: str) -> str:
    """A one-shot `ctms ARGUMENTS...` (an operator's command); its output, or a failure with it."""
    process = await asyncio.create_subprocess_exec(
        *CTMS,
        *arguments,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, (
        f"ctms {' '.join(arguments)} exited {process.returncode}:\n{text}"
    )
    return text


def base_environment() -> dict[str, str]:
    """This process's environment without any CTMS_ setting (the test states every one it needs)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("CTMS_")}
