"""What `ctms serve` listens on and how it logs (issue #16 defect 21): development mode (no
`CTMS_DB_URL`, the embedded database on a person's machine) stays on 127.0.0.1 and logs for humans unless
told otherwise; production is unchanged."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from ctms_entrypoints.cli import main
from ctms_entrypoints.cli.context import CliContext
from ctms_entrypoints.cli.serve import serve_defaults
from ctms_entrypoints.runtime import Runtime
from ctms_entrypoints.settings import Settings

PRODUCTION = {"CTMS_DB_URL": "postgresql://ctms@db.internal/ctms", "CTMS_SECRET_KEY": "k"}


def _defaults(environ: dict[str, str], host: str | None = None) -> tuple[str, bool]:
    chosen, settings = serve_defaults(Settings.from_env(environ), host, environ)
    return chosen, settings.use_mozlog


@pytest.mark.parametrize(
    ("environ", "host", "expected"),
    [
        ({}, None, ("127.0.0.1", False)),
        ({"HOST": "0.0.0.0"}, None, ("0.0.0.0", False)),  # noqa: S104
        ({}, "192.0.2.1", ("192.0.2.1", False)),
        ({"CTMS_USE_MOZLOG": "true"}, None, ("127.0.0.1", True)),
        ({"ctms_use_mozlog": "false"}, None, ("127.0.0.1", False)),
        ({"CTMS_USE_MOZLOG": "", "HOST": ""}, None, ("127.0.0.1", False)),  # empty = unset
        (PRODUCTION, None, ("0.0.0.0", True)),  # noqa: S104
        ({**PRODUCTION, "HOST": "10.0.0.5", "CTMS_USE_MOZLOG": "false"}, None, ("10.0.0.5", False)),
        (PRODUCTION, "127.0.0.1", ("127.0.0.1", True)),
    ],
)
def test_development_mode_listens_locally_and_logs_for_humans_unless_told_otherwise(
    environ: dict[str, str], host: str | None, expected: tuple[str, bool]
) -> None:
    assert _defaults(environ, host) == expected


def test_ctms_serve_in_development_mode_binds_127_0_0_1_and_exports_console_logging(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The command as a person runs it: the server it starts (and its worker processes, which read the
    environment) use the development defaults."""
    started: dict[str, Any] = {}
    observed: list[Settings] = []

    @contextlib.contextmanager
    def embedded_database(settings: Settings, **_: Any) -> Iterator[Runtime]:
        resolved = Settings.from_env(
            {"CTMS_DB_URL": "postgresql://dev@localhost/ctms", "CTMS_SECRET_KEY": "dev"}
        )
        yield Runtime(resolved, None)

    def run(*args: Any, **kwargs: Any) -> None:
        started.update(kwargs, use_mozlog=os.environ.get("CTMS_USE_MOZLOG"))

    for exported in ("CTMS_DB_URL", "CTMS_SECRET_KEY", "CTMS_USE_MOZLOG", "CTMS_SERVER_PREFIX"):
        monkeypatch.setenv(exported, "-")  # `serve` exports these: restored after the test
        monkeypatch.delenv(exported)
    context = CliContext(
        database_runtime=embedded_database,
        set_up_observability=lambda settings, _: observed.append(settings),
    )
    monkeypatch.setattr("uvicorn.run", run)
    environment = {"CTMS_DATA_DIR": str(tmp_path), "CTMS_USE_MOZLOG": None, "HOST": None}
    result = CliRunner().invoke(main.cli, ["serve"], env=environment, obj=context)
    assert result.exit_code == 0, result.output
    assert started["host"] == "127.0.0.1"
    assert started["use_mozlog"] == "false"
    assert [settings.use_mozlog for settings in observed] == [False]
