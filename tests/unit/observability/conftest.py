"""Fixtures for the observability blocks: captured log output, restored afterwards."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ctms_adapters.logging import configure_logging
from tests.support.log_capture import preserved_logging


class CapturedLogs:
    """The lines written by `configure_logging` to a StringIO, decoded when MozLog."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(self, *, use_mozlog: bool = True, level: str = "INFO", **options: Any) -> None:
        configure_logging(
            use_mozlog=use_mozlog,
            level=level,
            log_sqlalchemy=options.pop("log_sqlalchemy", False),
            stream=self.stream,
            **options,
        )

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self, logger_type: str | None = None) -> list[dict[str, Any]]:
        decoded = [json.loads(line) for line in self.lines()]
        return [r for r in decoded if logger_type is None or r["Type"] == logger_type]

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    with preserved_logging():
        captured = CapturedLogs()
        captured.configure()
        yield captured


RecordsOf = Callable[[str], list[dict[str, Any]]]
