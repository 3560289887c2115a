"""`ctms healthcheck-sync`, the worker's liveness probe: its answers, and what running it loads."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctms_entrypoints.cli.main import cli

_LOADED_BY_THE_PROBE = """
import json, sys
from ctms_entrypoints.cli.main import main
sys.argv = ["ctms", "healthcheck-sync"]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _probe(path: Path, written: datetime, destinations: str = "acoustic") -> tuple[int, str]:
    path.write_text(written.isoformat())
    result = CliRunner().invoke(
        cli,
        ["healthcheck-sync"],
        env={
            "CTMS_BACKGROUND_HEALTHCHECK_PATH": str(path),
            "CTMS_BACKGROUND_HEALTHCHECK_AGE_S": "60",
            "CTMS_SYNC_DESTINATIONS": destinations,
        },
    )
    return result.exit_code, result.output


def test_a_fresh_file_passes_and_a_stale_one_fails(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    assert _probe(tmp_path / "hc", now)[0] == 0
    code, output = _probe(tmp_path / "hc", now - timedelta(seconds=120))
    assert code == 1
    assert "Healthcheck failed (acoustic): Age" in output


def test_every_enabled_destination_needs_its_own_fresh_file(tmp_path: Path) -> None:
    code, output = _probe(tmp_path / "hc", datetime.now(UTC), destinations="acoustic,braze")
    assert code == 1
    assert "Healthcheck failed (braze)" in output


@pytest.mark.parametrize("heavy", ["sqlalchemy", "litestar", "ctms_entrypoints.container"])
def test_the_probe_loads_nothing_of_the_application(tmp_path: Path, heavy: str) -> None:
    """Kubernetes runs it every minute in every worker pod: it reads the settings and a file."""
    (tmp_path / "hc").write_text(datetime.now(UTC).isoformat())
    environment = {
        "CTMS_BACKGROUND_HEALTHCHECK_PATH": str(tmp_path / "hc"),
        "CTMS_BACKGROUND_HEALTHCHECK_AGE_S": "60",
        "PATH": "/usr/bin:/bin",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_THE_PROBE],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules = json.loads(loaded.stdout.splitlines()[-1])
    assert "ctms_entrypoints.cli.healthcheck" in modules
    assert heavy not in modules
