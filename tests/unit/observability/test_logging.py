"""The logging pipeline: MozLog envelope (docs/contract.md §11.1), levels, console mode."""

from __future__ import annotations

import logging
import os
import re
import socket
import time

import httpx
import pytest
import structlog

from ctms_adapters.logging import log_event, syslog_severity
from tests.unit.observability.conftest import CapturedLogs

ENVELOPE_KEYS = [
    "Timestamp",
    "Type",
    "Logger",
    "Hostname",
    "EnvVersion",
    "Severity",
    "Pid",
    "Fields",
]


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


def test_structlog_event_renders_the_exact_mozlog_envelope(captured_logs: CapturedLogs) -> None:
    """A structlog event becomes one JSON line with exactly the MozLog keys, types and values."""
    before = time.time_ns()
    structlog.get_logger("ctms.web").info("hello", client_id="id_x", status_code=200)
    after = time.time_ns()

    (line,) = captured_logs.lines()
    (record,) = captured_logs.records()
    assert list(record) == ENVELOPE_KEYS
    assert isinstance(record["Timestamp"], int)
    assert before - 1_000_000 <= record["Timestamp"] <= after + 1_000_000
    assert record["Type"] == "ctms.web"
    assert record["Logger"] == "ctms"
    assert record["Hostname"] == socket.gethostname()
    assert record["EnvVersion"] == "2.0"
    assert record["Severity"] == 6
    assert record["Pid"] == os.getpid()
    assert record["Fields"] == {"client_id": "id_x", "status_code": 200, "msg": "hello"}
    assert list(record["Fields"])[-1] == "msg"
    assert "\n" not in line


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
    ],
)
def test_severity_is_the_syslog_number_of_the_level(
    captured_logs: CapturedLogs, level: int, severity: int
) -> None:
    """Severity follows syslog: CRITICAL 2, ERROR 3, WARNING 4, INFO 6, DEBUG 7."""
    captured_logs.configure(level="DEBUG")
    logging.getLogger("ctms.test").log(level, "message")
    (record,) = captured_logs.records()
    assert record["Severity"] == severity
    assert syslog_severity(level) == severity


def test_stdlib_records_share_the_envelope_with_extras_and_arguments(
    captured_logs: CapturedLogs,
) -> None:
    """Foreign stdlib records (uvicorn, alembic, ctms modules) get the same envelope, extras in Fields."""
    logging.getLogger("uvicorn.error").warning(
        "Started %s on %d", "server", 8000, extra={"port": 8000}
    )
    (record,) = captured_logs.records()
    assert list(record) == ENVELOPE_KEYS
    assert record["Type"] == "uvicorn.error"
    assert record["Severity"] == 4
    assert record["Fields"] == {"port": 8000, "msg": "Started server on 8000"}


def test_attached_exception_adds_error_and_traceback(captured_logs: CapturedLogs) -> None:
    """An exception adds `error` (its repr) and `traceback` to Fields, from structlog and stdlib alike."""
    try:
        raise ValueError("bad value")
    except ValueError:
        structlog.get_logger("ctms.web").exception("structlog failure", rid="r1")
        logging.getLogger("ctms.crud").exception("stdlib failure")

    structlog_record, stdlib_record = captured_logs.records()
    for record in (structlog_record, stdlib_record):
        assert record["Severity"] == 3
        assert record["Fields"]["error"] == "ValueError('bad value')"
        assert record["Fields"]["traceback"].startswith("Traceback (most recent call last):")
        assert record["Fields"]["traceback"].rstrip().endswith("ValueError: bad value")
    assert list(structlog_record["Fields"]) == ["rid", "msg", "error", "traceback"]
    assert list(stdlib_record["Fields"]) == ["msg", "error", "traceback"]


def test_exception_instance_as_exc_info_is_rendered(captured_logs: CapturedLogs) -> None:
    """`exc_info=<exception>` outside an except block still yields the traceback."""
    try:
        raise KeyError("k")
    except KeyError as error:
        caught = error
    structlog.get_logger("ctms.web").error("failed", exc_info=caught)
    (record,) = captured_logs.records()
    assert record["Fields"]["error"] == "KeyError('k')"
    assert "KeyError" in record["Fields"]["traceback"]


def test_values_json_cannot_encode_are_rendered_with_repr(captured_logs: CapturedLogs) -> None:
    """Non-JSON values fall back to repr() instead of breaking the line."""
    structlog.get_logger("ctms.web").info(
        "odd", thing=Opaque(), raw=b"\x00", nested={"t": Opaque()}
    )
    (record,) = captured_logs.records()
    assert record["Fields"] == {
        "thing": "<Opaque thing>",
        "raw": "b'\\x00'",
        "nested": {"t": "<Opaque thing>"},
        "msg": "odd",
    }


def test_levels_follow_the_settings(captured_logs: CapturedLogs) -> None:
    """Root and ctms/uvicorn/alembic at the level; uvicorn.access discarded; SQL only when asked."""
    captured_logs.configure(level="WARNING")
    logging.getLogger("ctms.web").info("hidden")
    logging.getLogger("alembic").info("hidden")
    logging.getLogger("alembic").warning("shown")
    logging.getLogger("uvicorn.access").warning("discarded")
    assert [r["Fields"]["msg"] for r in captured_logs.records()] == ["shown"]

    captured_logs.clear()
    captured_logs.configure(level="INFO")
    logging.getLogger("sqlalchemy.engine").info("SELECT 1")
    logging.getLogger("sqlalchemy.engine").warning("pool warning")
    assert [r["Fields"]["msg"] for r in captured_logs.records()] == ["pool warning"]

    captured_logs.clear()
    captured_logs.configure(level="INFO", log_sqlalchemy=True)
    logging.getLogger("sqlalchemy.engine").info("SELECT 1")
    logging.getLogger("uvicorn").debug("hidden")
    assert [r["Fields"]["msg"] for r in captured_logs.records()] == ["SELECT 1"]


def test_debug_events_are_filtered_before_rendering(captured_logs: CapturedLogs) -> None:
    """Below the configured level nothing is written, for structlog and stdlib loggers."""
    structlog.get_logger("ctms.web").debug("hidden")
    logging.getLogger("ctms").debug("hidden")
    assert captured_logs.lines() == []


def test_configuring_twice_installs_one_handler(captured_logs: CapturedLogs) -> None:
    """configure_logging is idempotent: a second call replaces the handler, no duplicate lines."""
    captured_logs.configure()
    captured_logs.configure()
    structlog.get_logger("ctms.web").info("once")
    assert len(captured_logs.lines()) == 1


def test_console_mode_is_readable_without_colours_on_a_non_terminal(
    captured_logs: CapturedLogs,
) -> None:
    """use_mozlog=False renders timestamp, level, event, logger name and key=value pairs."""
    captured_logs.configure(use_mozlog=False)
    structlog.get_logger("ctms.web").info("request done", status_code=200)
    logging.getLogger("uvicorn.error").warning("from stdlib")
    first, second = captured_logs.lines()
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[info\s*\] request done\s+\[ctms\.web\] status_code=200$",
        first,
    )
    assert "[warning" in second and "from stdlib" in second and "[uvicorn.error]" in second
    assert "\x1b[" not in captured_logs.stream.getvalue()


def test_console_mode_can_be_coloured(captured_logs: CapturedLogs) -> None:
    """Colours are on for terminals, or when asked for."""
    captured_logs.configure(use_mozlog=False, colors=True)
    structlog.get_logger("ctms.web").info("coloured")
    assert "\x1b[" in captured_logs.stream.getvalue()


def test_log_event_fast_path_renders_like_structlog(captured_logs: CapturedLogs) -> None:
    """log_event writes the same envelope and hands the exception to the stdlib record."""
    seen: list[logging.LogRecord] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    spy = Spy()
    logger = logging.getLogger("ctms.web")
    logger.addHandler(spy)
    try:
        log_event(logger, logging.INFO, "line", {"a": 1})
        log_event(logger, logging.ERROR, "failed", {"b": 2}, exc_info=RuntimeError("x"))
        log_event(logger, logging.DEBUG, "hidden", {"c": 3})
    finally:
        logger.removeHandler(spy)

    info, error = captured_logs.records()
    assert list(info) == ENVELOPE_KEYS
    assert (info["Type"], info["Severity"], info["Fields"]) == (
        "ctms.web",
        6,
        {"a": 1, "msg": "line"},
    )
    assert error["Severity"] == 3
    assert error["Fields"]["error"] == "RuntimeError('x')"
    assert list(error["Fields"]) == ["b", "msg", "error", "traceback"]
    assert seen[1].exc_info is not None and isinstance(seen[1].exc_info[1], RuntimeError)


def _call_through_httpx() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as client:
        client.post("https://acoustic.test/XMLAPI")


def test_http_client_calls_are_not_logged_at_info(captured_logs: CapturedLogs) -> None:
    """httpx writes a line per HTTP call at INFO; at INFO only the worker's own line per upload shows."""
    _call_through_httpx()
    assert captured_logs.lines() == []


def test_http_client_calls_are_debug_detail(captured_logs: CapturedLogs) -> None:
    """At DEBUG the transport lines show, labelled DEBUG."""
    captured_logs.configure(level="DEBUG")
    _call_through_httpx()
    httpx_records = [r for r in captured_logs.records() if r["Type"] == "httpx"]
    assert httpx_records, captured_logs.lines()
    assert {r["Severity"] for r in httpx_records} == {syslog_severity(logging.DEBUG)}


def test_addresses_in_exceptions_and_warnings_are_omitted(captured_logs: CapturedLogs) -> None:
    """Exception text may quote what failed (a database's `Key (primary_email)=(...)`): addresses never
    reach `error`, `traceback`, or the message of a warning or an error."""
    try:
        raise ValueError("Key (primary_email)=(jane@example.com) already exists")
    except ValueError:
        logging.getLogger("ctms.web").exception("failed for jane@example.com")
    logging.getLogger("ctms.sync").warning("rejected: %s", "Recipient jane%40example.com unknown")
    error, warning = captured_logs.records()
    assert (
        error["Fields"]["error"] == "ValueError('Key (primary_email)=([OMITTED]) already exists')"
    )
    assert "jane" not in error["Fields"]["traceback"]
    assert error["Fields"]["msg"] == "failed for [OMITTED]"
    assert warning["Fields"]["msg"] == "rejected: Recipient [OMITTED] unknown"


def test_console_mode_omits_addresses_in_exceptions_and_warnings(
    captured_logs: CapturedLogs,
) -> None:
    """Development's console lines keep the MozLog rule: no address in a traceback, an error or a warning."""
    captured_logs.configure(use_mozlog=False)
    try:
        raise ValueError("Key (primary_email)=(jane@example.com) already exists")
    except ValueError:
        logging.getLogger("ctms.web").exception("failed for jane@example.com")
    logging.getLogger("ctms.sync").warning("rejected: %s", "Recipient jane%40example.com unknown")
    structlog.get_logger("ctms.web").info("request done", status_code=200)
    output = captured_logs.stream.getvalue()
    assert "ValueError: Key (primary_email)=([OMITTED]) already exists" in output
    assert "failed for [OMITTED]" in output
    assert "rejected: Recipient [OMITTED] unknown" in output
    assert "jane" not in output
    assert "request done" in output
