"""Every log line the application writes, as MozLog JSON, for tests that scan logs for what must not be
there (addresses, tokens, secrets)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import structlog

from ctms_adapters.logging import configure_logging

_TOUCHED_LOGGERS = (
    "",
    "ctms",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "alembic",
    "sqlalchemy.engine",
    "httpx",
    "httpcore",
)
# The test client's own loggers are not the application's.
_TEST_CLIENT_LOGGERS = ("httpx", "httpcore")


class CapturedLogs:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        """The application's lines so far (the test client's left out)."""
        return [
            line
            for line in self.stream.getvalue().splitlines()
            if json.loads(line).get("Type") not in _TEST_CLIENT_LOGGERS
        ]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@contextlib.contextmanager
def preserved_logging() -> Iterator[None]:
    """Whatever the block configures on the application's loggers is undone after it."""
    saved = []
    for name in _TOUCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append(
            (logger, logger.level, logger.propagate, logger.disabled, list(logger.handlers))
        )
    try:
        yield
    finally:
        for logger, level, propagate, disabled, handlers in saved:
            for handler in list(logger.handlers):
                if handler not in handlers:
                    logger.removeHandler(handler)
                    handler.close()
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled
        structlog.reset_defaults()


@contextlib.contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    """MozLog lines of every logger at DEBUG, for the duration of the block; logging restored after."""
    with preserved_logging():
        captured = CapturedLogs()
        configure_logging(
            use_mozlog=True, level="DEBUG", log_sqlalchemy=False, stream=captured.stream
        )
        yield captured
