"""Load generators: `wrk` (native, closed loop) with the Lua scenarios in `bench/lua/`, and a small
asyncio HTTP/1.1 client for the open-loop run and as the fallback where `wrk` is not installed."""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
SCENARIOS = ("heartbeat", "get_by_id", "get_by_email", "post", "patch", "updates")
LABELS = {
    "heartbeat": "GET /__lbheartbeat__",
    "get_by_id": "GET /ctms/{email_id}",
    "get_by_email": "GET /ctms?primary_email=",
    "post": "POST /ctms",
    "patch": "PATCH /ctms/{email_id}",
    "updates": "GET /updates (paging)",
}
UPDATES_FIRST_PAGE = "/updates?start=2000-01-01T00:00:00%2B00:00&limit=100"


@dataclass
class ScenarioResult:
    scenario: str
    tool: str
    concurrency: int
    seconds: float
    requests: int
    errors: int  # non-2xx/3xx responses plus socket errors and timeouts
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    rss_peak_total_mb: float = 0.0
    rss_peak_largest_mb: float = 0.0
    server_cpu: float = 0.0  # CPU cores the API process tree kept busy, on average
    # The same for PostgreSQL: the embedded server's processes, or on a local CTMS_DB_URL server the
    # backends connected to the bench's database when the scenario started.
    database_cpu: float = 0.0
    detail: dict[str, Any] | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / max(1, self.requests + self.errors)

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu / self.rps if self.rps else 0.0

    @property
    def database_cpu_ms_per_request(self) -> float:
        return 1000 * self.database_cpu / self.rps if self.rps else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "error_rate": self.error_rate,
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request,
            "database_cpu_ms_per_request": self.database_cpu_ms_per_request,
        }


@dataclass(frozen=True)
class Workload:
    """What the scenarios pick from."""

    token: str
    ids_file: Path
    emails_file: Path
    email_ids: Sequence[str]
    primary_emails: Sequence[str]
    newsletters: Sequence[str]


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    scenario: str,
    base_url: str,
    workload: Workload,
    *,
    concurrency: int,
    seconds: float,
    threads: int = 2,
) -> ScenarioResult:
    threads = max(1, min(threads, concurrency))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        f"{scenario}.lua",
        base_url,
        "--",
        workload.token,
        str(workload.ids_file),
        str(workload.emails_file),
        ",".join(workload.newsletters),
    ]
    completed = subprocess.run(
        command,
        cwd=LUA_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )
    match = re.search(r"^WRK_JSON (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(
            f"wrk failed for {scenario} ({completed.returncode}):\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    data = json.loads(match.group(1))
    errors = sum(data["errors"].values())
    duration = data["duration_us"] / 1e6
    latency = data["latency_us"]
    return ScenarioResult(
        scenario=scenario,
        tool="wrk",
        concurrency=concurrency,
        seconds=duration,
        requests=data["requests"],
        errors=errors,
        rps=data["requests"] / duration,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        detail={"errors": data["errors"], "p999_ms": latency["p999"] / 1000},
    )


# --- the asyncio client ---------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for the CTMS API."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            header = name.strip().lower()
            if header == b"content-length":
                length = int(value)
            elif header == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await self.reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body)

    def close(self) -> None:
        self.writer.close()


def _raw(method: str, path: str, host: str, token: str | None, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def _random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


class PythonScenario:
    """The Lua scenarios again, for the asyncio client; one per worker task."""

    def __init__(self, name: str, host: str, workload: Workload, rng: random.Random) -> None:
        self.name = name
        self.host = host
        self.workload = workload
        self.rng = rng
        self.cursor: str | None = None
        self.counter = 0
        # Not from `rng` (seeded per connection): a warm-up and the measured run must not create the
        # same addresses, which would answer 409.
        self.tag = secrets.token_hex(4)

    def next_request(self) -> bytes:
        w, rng = self.workload, self.rng
        if self.name == "heartbeat":
            return _raw("GET", "/__lbheartbeat__", self.host, None)
        if self.name == "get_by_id":
            return _raw("GET", f"/ctms/{rng.choice(w.email_ids)}", self.host, w.token)
        if self.name == "get_by_email":
            email = quote(_random_case(rng.choice(w.primary_emails), rng), safe="")
            return _raw("GET", f"/ctms?primary_email={email}", self.host, w.token)
        if self.name == "post":
            self.counter += 1
            first, second = rng.sample(list(w.newsletters), 2)
            body = {
                "email": {
                    "primary_email": f"bench.py.{self.tag}.{self.counter}@example.org",
                    "first_name": "Bench",
                    "email_lang": "en",
                },
                "newsletters": [{"name": first}, {"name": second}],
            }
            return _raw("POST", "/ctms", self.host, w.token, json.dumps(body).encode())
        if self.name == "patch":
            change = {"name": rng.choice(w.newsletters), "subscribed": rng.random() < 0.5}
            patch = json.dumps({"newsletters": [change]}).encode()
            return _raw("PATCH", f"/ctms/{rng.choice(w.email_ids)}", self.host, w.token, patch)
        if self.name == "updates":
            path = UPDATES_FIRST_PAGE
            if self.cursor:
                path += "&after=" + quote(self.cursor, safe="")
            return _raw("GET", path, self.host, w.token)
        raise ValueError(f"unknown scenario {self.name}")

    def on_response(self, status: int, body: bytes) -> None:
        if self.name == "updates":
            found = re.search(rb'"after":"([^"]*)"', body) if status == 200 else None
            self.cursor = found.group(1).decode() if found else None


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _result(
    scenario: str,
    tool: str,
    concurrency: int,
    seconds: float,
    latencies: list[float],
    errors: int,
    detail: dict[str, Any] | None = None,
) -> ScenarioResult:
    ordered = sorted(latencies)
    return ScenarioResult(
        scenario=scenario,
        tool=tool,
        concurrency=concurrency,
        seconds=seconds,
        requests=len(ordered),
        errors=errors,
        rps=len(ordered) / seconds if seconds else 0.0,
        p50_ms=_percentile(ordered, 0.50) * 1000,
        p90_ms=_percentile(ordered, 0.90) * 1000,
        p99_ms=_percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
        detail=detail,
    )


async def _closed_loop(
    scenario: str,
    host: str,
    port: int,
    workload: Workload,
    concurrency: int,
    seconds: float,
) -> ScenarioResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(number: int) -> None:
        nonlocal errors
        state = PythonScenario(scenario, f"{host}:{port}", workload, random.Random(number))
        connection: Connection | None = None
        while time.perf_counter() < deadline:
            try:
                if connection is None:
                    connection = await Connection.open(host, port)
                raw = state.next_request()
                started = time.perf_counter()
                status, body = await asyncio.wait_for(connection.request(raw), 10)
                latencies.append(time.perf_counter() - started)
                state.on_response(status, body)
                if status >= 400:
                    errors += 1
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                errors += 1
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return _result(
        scenario, "python-asyncio", concurrency, time.perf_counter() - started, latencies, errors
    )


def run_python(
    scenario: str,
    base_url: str,
    workload: Workload,
    *,
    concurrency: int,
    seconds: float,
) -> ScenarioResult:
    """The fallback closed-loop generator (much slower than wrk: it shares the CPU with the server)."""
    host, port = _host_port(base_url)
    return asyncio.run(_closed_loop(scenario, host, port, workload, concurrency, seconds))


def _host_port(base_url: str) -> tuple[str, int]:
    authority = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = authority.rpartition(":")
    return host, int(port)


async def _open_loop(
    scenario: str,
    host: str,
    port: int,
    workload: Workload,
    rate: float,
    seconds: float,
    connections: int,
) -> ScenarioResult:
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(host, port))
    state = PythonScenario(scenario, f"{host}:{port}", workload, random.Random(1))
    latencies: list[float] = []
    errors = 0
    max_lag = 0.0
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def fire(raw: bytes, intended: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status, _ = await asyncio.wait_for(connection.request(raw), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            errors += 1
            connection.close()
            connection = await Connection.open(host, port)
        else:
            # Latency from when the request was due, not from when a connection was free:
            # waiting for the server counts (no coordinated omission).
            latencies.append(loop.time() - intended)
            if status >= 400:
                errors += 1
        pool.put_nowait(connection)

    start = loop.time() + 0.05
    end = start + seconds
    number = 0
    while True:
        intended = start + number / rate
        if intended >= end:
            break
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        task = loop.create_task(fire(state.next_request(), intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        number += 1
    if tasks:
        await asyncio.wait(set(tasks), timeout=15)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().close()
    return _result(
        scenario,
        "python-asyncio open loop",
        connections,
        elapsed,
        latencies,
        errors,
        detail={
            "target_rps": rate,
            "scheduled": number,
            "generator_max_lag_ms": max_lag * 1000,
        },
    )


def run_open_loop(
    scenario: str,
    base_url: str,
    workload: Workload,
    *,
    rate: float,
    seconds: float,
    connections: int = 64,
) -> ScenarioResult:
    """Requests sent at a fixed rate whatever the server does, latency measured from the scheduled
    send time (what wrk2 does; wrk2 is not packaged by Debian)."""
    host, port = _host_port(base_url)
    return asyncio.run(_open_loop(scenario, host, port, workload, rate, seconds, connections))


Runner = Callable[..., ScenarioResult]
