"""The sync worker's pacing (docs/contract.md §9.2) and its metrics exposition and Pushgateway push (docs/contract.md §11.6)."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ctms_core.domain.sync import SyncPassStats
from ctms_entrypoints.worker.loop import sleep_after
from ctms_entrypoints.worker.metrics import PUSHGATEWAY_JOB, BackgroundMetrics


def _stats(count_total: int, batch_limit: int = 20) -> SyncPassStats:
    return SyncPassStats(
        batch_limit=batch_limit,
        retry_limit=6,
        end_time="2024-01-01T00:00:00+00:00",
        count_total=count_total,
        sync_backlog=3,
        retry_backlog=1,
    )


def test_a_partial_batch_sleeps_what_remains_of_the_minimum_loop_time() -> None:
    assert sleep_after(1.5, _stats(count_total=4), loop_min_secs=5) == pytest.approx(3.5)


def test_a_slow_partial_batch_does_not_sleep() -> None:
    assert sleep_after(7.0, _stats(count_total=4), loop_min_secs=5) == 0.0


def test_a_full_batch_does_not_sleep() -> None:
    assert sleep_after(0.1, _stats(count_total=20), loop_min_secs=5) == 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_worker_serves_its_metrics_with_the_constant_labels() -> None:
    metrics = BackgroundMetrics()
    metrics.record_pass(_stats(count_total=2), duration_s=0.25)
    port = _free_port()
    metrics.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert "ctms_background_acoustic_sync_loops_total" in text
    assert 'app_kubernetes_io_component="background"' in text
    assert "ctms_background_acoustic_sync_backlog" in text


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            received.append((self.command, self.path, self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        do_PUT = _record
        do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_each_pass_can_be_pushed_to_the_pushgateway(
    pushgateway: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, received = pushgateway
    metrics = BackgroundMetrics()
    metrics.record_pass(_stats(count_total=1), duration_s=0.1)
    metrics.push(url)
    [(method, path, body)] = received
    assert method == "PUT"
    assert path == f"/metrics/job/{PUSHGATEWAY_JOB}"
    assert b"ctms_background_acoustic_sync_loops_total" in body


def test_an_unreachable_pushgateway_is_logged_not_raised() -> None:
    BackgroundMetrics().push(f"http://127.0.0.1:{_free_port()}")
