#!/usr/bin/env python3
"""Bootstrap CTMS on a machine that has nothing but Python 3.11+.

    python3 dev.py serve [ctms serve options]   # the API on the embedded PostgreSQL
    python3 dev.py test  [tox options]          # every check and test (what CI runs)
    python3 dev.py ctms ARGS...                 # any other `ctms` command

It creates `.venv` beside this file on first use, installs the project (editable) with its development
tools, and re-installs only when `pyproject.toml` changes. Standard library only, on purpose.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".ctms-install-stamp"


def _run(*command: str | os.PathLike[str]) -> None:
    subprocess.run([str(part) for part in command], check=True, cwd=ROOT)  # noqa: S603


def ensure_environment() -> None:
    """Create the virtual environment and install the project when missing or outdated."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    python = BIN / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip>=25.1")
    print("dev.py: installing ctms and its development tools", flush=True)
    _run(python, "-m", "pip", "install", "--quiet", "--editable", ".", "--group", "dev")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "ctms"}:
        print(__doc__)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - a clear message on an old interpreter
        print("CTMS needs Python 3.11 or newer.", file=sys.stderr)
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "test":
        program = [str(BIN / "tox"), *rest]
    elif command == "serve":
        program = [str(BIN / "ctms"), "serve", *rest]
    else:
        program = [str(BIN / "ctms"), *rest]
    os.execv(program[0], program)  # noqa: S606
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
