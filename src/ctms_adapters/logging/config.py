"""One logging pipeline for the process: structlog events and stdlib records (uvicorn, sqlalchemy, alembic,
ctms) rendered by the same `ProcessorFormatter`, as MozLog JSON lines or a coloured console (docs/contract.md §11.1)."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from typing import IO, Any

import structlog
from structlog.typing import Processor

from ctms_adapters.logging.mozlog import MozLogRenderer, exc_info_tuple
from ctms_adapters.logging.redaction import redact_addresses

__all__ = ["configure_logging", "log_event"]

# Marks the handler `configure_logging` installs on the root logger, so a second call replaces it.
_HANDLER_MARK = "_ctms_logging_handler"

_LEVELLED_LOGGERS = ("ctms", "uvicorn", "uvicorn.error", "alembic")
# HTTP client transport detail: httpx logs every request at INFO, which is ten lines per Acoustic upload
# where the worker writes one of its own. It shows only at DEBUG, as DEBUG records.
_TRANSPORT_LOGGERS = ("httpx", "httpcore")


class _AsTransportDetail(logging.Filter):
    """Relabels a record below WARNING as DEBUG: transport detail, whatever level the library chose."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_TRANSPORT_DETAIL = _AsTransportDetail()


def _resolve_exc_info(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # `exc_info=True` only means something while the exception is being handled: pin the tuple now.
    if "exc_info" in event_dict:
        exc_info = exc_info_tuple(event_dict["exc_info"])
        if exc_info is None:
            del event_dict["exc_info"]
        else:
            event_dict["exc_info"] = exc_info
    return event_dict


def _redact_console_addresses(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The console renderer's share of the MozLog renderer's rule (docs/contract.md §16.4): exception text,
    stacks, and the message of a warning or an error may quote what failed, so their addresses are blanked.
    The exception is rendered to text here, where it can be redacted, instead of by the renderer."""
    exc_info = exc_info_tuple(event_dict.pop("exc_info", None))
    if exc_info is not None:
        event_dict["exception"] = redact_addresses("".join(traceback.format_exception(*exc_info)))
    stack_info = event_dict.get("stack_info")
    if isinstance(stack_info, str):
        event_dict["stack_info"] = redact_addresses(stack_info)
    event = event_dict.get("event")
    if isinstance(event, str) and (
        exc_info is not None
        or logging.getLevelNamesMapping().get(method_name.upper(), 0) >= logging.WARNING
    ):
        event_dict["event"] = redact_addresses(event)
    return event_dict


# Attributes every LogRecord has, plus those formatters add (`message`, `asctime`) and uvicorn's
# `color_message` duplicate of the message: none of them is an "extra" worth a field.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "_logger",
    "_name",
}


def _add_record_extras(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # structlog's ExtraAdder would also copy what other handlers' formatters left on the record.
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in event_dict:
                event_dict[key] = value
    return event_dict


class _MozLogFormatter(logging.Formatter):
    """MozLog mode's formatter: each record straight to its JSON line.

    It renders what `ProcessorFormatter(foreign_pre_chain=[_add_record_extras],
    processors=[MozLogRenderer()])` renders, without copying every record and running a processor chain
    first: the access log writes a record per request (measured about 45 µs per record before). structlog
    events and `log_event` records carry their event dict as `msg`; any other stdlib record becomes
    `{"event": <its message>}` with its extras, exception and stack. The record itself is left untouched
    for other handlers.
    """

    def __init__(self, renderer: MozLogRenderer) -> None:
        super().__init__()
        self._renderer = renderer

    def format(self, record: logging.LogRecord) -> str:
        message = record.msg
        logger = getattr(record, "_logger", None)
        event_dict: dict[str, Any]
        if isinstance(message, dict) and logger is not None:
            event_dict = {**message, "_record": record}
            method_name = getattr(record, "_name", record.levelname.lower())
        else:
            event_dict = {"event": record.getMessage(), "_record": record}
            if record.exc_info:
                event_dict["exc_info"] = record.exc_info
            if record.stack_info:
                event_dict["stack_info"] = record.stack_info
            method_name = record.levelname.lower()
            _add_record_extras(logger, method_name, event_dict)
        return self._renderer(logger, method_name, event_dict)


def _wrap_for_formatter(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[MutableMapping[str, Any]], dict[str, Any]]:
    # Like `ProcessorFormatter.wrap_for_formatter`, and also hands the exception to the stdlib record so
    # handlers that read `record.exc_info` (Sentry's logging integration) see it.
    return (event_dict,), {
        "extra": {"_logger": logger, "_name": method_name},
        "exc_info": event_dict.get("exc_info"),
    }


def configure_logging(
    *,
    use_mozlog: bool,
    level: str,
    log_sqlalchemy: bool,
    stream: IO[str] | None = None,
    colors: bool | None = None,
) -> None:
    """Route structlog and stdlib logging through one handler on `stream` (default: stdout).

    `level` applies to the root logger and to `ctms`, `uvicorn` and `alembic`; `sqlalchemy.engine` follows it
    only when `log_sqlalchemy`, else WARNING; `httpx` and `httpcore` (one line per HTTP call) log only at
    DEBUG, as DEBUG records, and their warnings; `uvicorn.access` is discarded (the app writes its own access
    log). Calling it again replaces the previous configuration. `colors` defaults to whether `stream` is a
    terminal (console mode only).
    """
    output = stream if stream is not None else sys.stdout
    numeric_level = logging.getLevelNamesMapping()[level.upper()]

    formatter: logging.Formatter
    if use_mozlog:
        formatter = _MozLogFormatter(MozLogRenderer())
    else:
        use_colors = colors if colors is not None else bool(getattr(output, "isatty", bool)())
        console_processors: list[Processor] = [
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact_console_addresses,
            structlog.dev.ConsoleRenderer(colors=use_colors),
        ]
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_record_extras], processors=console_processors
        )

    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARK, False):
            root.removeHandler(existing)
            existing.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)

    for name in _LEVELLED_LOGGERS:
        stdlib_logger = logging.getLogger(name)
        stdlib_logger.handlers.clear()
        stdlib_logger.propagate = True
        stdlib_logger.disabled = False
        stdlib_logger.setLevel(numeric_level)

    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True

    logging.getLogger("sqlalchemy.engine").setLevel(
        numeric_level if log_sqlalchemy else logging.WARNING
    )

    for name in _TRANSPORT_LOGGERS:
        transport = logging.getLogger(name)
        transport.setLevel(logging.DEBUG if numeric_level <= logging.DEBUG else logging.WARNING)
        if _TRANSPORT_DETAIL not in transport.filters:
            transport.addFilter(_TRANSPORT_DETAIL)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            _resolve_exc_info,
            _wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


_LEVEL_METHODS = {
    logging.CRITICAL: "critical",
    logging.ERROR: "error",
    logging.WARNING: "warning",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}


def log_event(
    logger: logging.Logger,
    level: int,
    event: str,
    fields: dict[str, Any],
    *,
    exc_info: BaseException | None = None,
) -> None:
    """Emit one structured record on a stdlib `logger`, as a structlog call would, without structlog's
    processor chain or its caller lookup: for per-request records on the hot path.

    `fields` becomes the record's structured context (and is consumed: `event` is added to it). The caller
    checks `logger.isEnabledFor(level)` first when building `fields` is not free.
    """
    if not logger.isEnabledFor(level):
        return
    fields["event"] = event
    exc_tuple = exc_info_tuple(exc_info)
    if exc_tuple is not None:
        fields["exc_info"] = exc_tuple
    record = logger.makeRecord(
        logger.name,
        level,
        "(unknown file)",
        0,
        fields,
        (),
        exc_tuple,
        extra={"_logger": logger, "_name": _LEVEL_METHODS.get(level, "info")},
    )
    logger.handle(record)
