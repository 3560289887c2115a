"""The MozLog JSON envelope CTMS v3 wrote through dockerflow's `JsonLogFormatter` (docs/contract.md §11.1)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

from ctms_adapters.logging.redaction import redact_addresses

__all__ = ["ENV_VERSION", "LOGGER_NAME", "MozLogRenderer", "syslog_severity"]

ENV_VERSION = "2.0"
LOGGER_NAME = "ctms"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# Keys ProcessorFormatter and our own chain use for bookkeeping; never shown in `Fields`.
_META_KEYS = frozenset({"_record", "_from_structlog", "event", "exc_info", "stack_info"})

_METHOD_LEVELS = {
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "exception": logging.ERROR,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def syslog_severity(levelno: int) -> int:
    """The syslog severity of a stdlib level: CRITICAL 2, ERROR 3, WARNING 4, INFO 6, DEBUG (and below) 7."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def exc_info_tuple(value: object) -> ExcInfo | None:
    """Normalise an `exc_info` value (a tuple, an exception, or True inside an `except` block)."""
    if value is None or value is False:
        return None
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if value is True:
        current = sys.exc_info()
        return None if current[1] is None else current
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value
    return None


class MozLogRenderer:
    """Last processor of the `ProcessorFormatter` chain: one MozLog JSON line per record.

    `Type` is the stdlib logger name, `Fields` every structured key in order plus `msg`, and, with an exception
    attached, `error` (its repr) and `traceback`. Values JSON cannot encode are rendered with `repr()`.
    E-mail addresses in `error`, `traceback`, `stack`, and in the `msg` of warnings and errors are shown as
    `[OMITTED]` (`redact_addresses`).
    """

    def __init__(self, *, logger_name: str = LOGGER_NAME, hostname: str | None = None) -> None:
        self._logger_name = logger_name
        self._hostname = hostname if hostname is not None else socket.gethostname()
        self._encoder = json.JSONEncoder(default=repr, ensure_ascii=False, separators=(",", ":"))

    def __call__(
        self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> str:
        record = event_dict.get("_record")
        fields: dict[str, Any] = {
            key: value for key, value in event_dict.items() if key not in _META_KEYS
        }
        event = event_dict.get("event")
        fields["msg"] = event if isinstance(event, str) else ("" if event is None else str(event))
        exc_info = exc_info_tuple(event_dict.get("exc_info"))
        if exc_info is None and isinstance(record, logging.LogRecord) and record.exc_info:
            exc_info = exc_info_tuple(record.exc_info)
        # Exception text and warnings may quote what failed: addresses are blanked there (docs/contract.md §16.4).
        if exc_info is not None:
            fields["error"] = redact_addresses(repr(exc_info[1]))
            fields["traceback"] = redact_addresses("".join(traceback.format_exception(*exc_info)))
        stack_info = event_dict.get("stack_info")
        if isinstance(stack_info, str):
            fields["stack"] = redact_addresses(stack_info)
        if exc_info is not None or (
            isinstance(record, logging.LogRecord) and record.levelno >= logging.WARNING
        ):
            fields["msg"] = redact_addresses(fields["msg"])
        if isinstance(record, logging.LogRecord):
            timestamp = int(record.created * 1_000_000_000)
            logger_type = record.name
            severity = syslog_severity(record.levelno)
            pid = record.process if record.process is not None else os.getpid()
        else:  # rendered outside a stdlib handler (not how `configure_logging` wires it)
            timestamp = time.time_ns()
            logger_type = _level_less_name(logger)
            severity = syslog_severity(_METHOD_LEVELS.get(method_name, logging.INFO))
            pid = os.getpid()
        return self._encoder.encode(
            {
                "Timestamp": timestamp,
                "Type": logger_type,
                "Logger": self._logger_name,
                "Hostname": self._hostname,
                "EnvVersion": ENV_VERSION,
                "Severity": severity,
                "Pid": pid,
                "Fields": fields,
            }
        )


def _level_less_name(logger: object) -> str:
    name = getattr(logger, "name", None)
    return name if isinstance(name, str) else LOGGER_NAME
