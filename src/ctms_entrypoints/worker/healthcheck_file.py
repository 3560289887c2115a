"""The sync worker's healthcheck files (docs/contract.md §9.6): each destination's loop writes the current
UTC time in its file after every pass, and `ctms healthcheck-sync` reads how old it is. Standard library
only: the liveness probe imports this module and the settings, nothing else of the application."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["healthcheck_age", "healthcheck_path_for", "write_healthcheck"]


def write_healthcheck(path: Path | None, now: Callable[[], datetime] | None = None) -> None:
    """Write the current UTC time in ISO format (docs/contract.md §9.6); nothing without a path."""
    if path is None:
        return
    moment = (now or (lambda: datetime.now(UTC)))()
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(moment.isoformat())
    temporary.replace(path)


def healthcheck_path_for(path: Path | None, destination: str) -> Path | None:
    """The healthcheck file of `destination`'s loop: `path` itself for `acoustic` (as in v3.3),
    `<path>.<destination>` for any other."""
    if path is None or destination == "acoustic":
        return path
    return path.with_name(f"{path.name}.{destination}")


def healthcheck_age(path: Path, now: datetime | None = None) -> float:
    """Age in seconds of the healthcheck file's timestamp; raises ValueError/OSError when unusable."""
    written = datetime.fromisoformat(path.read_text().strip())
    if written.tzinfo is None:
        written = written.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - written).total_seconds()
