"""The embedding example of docs/embedding.md runs and does what the page says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedding.py"


def test_embedding_example_creates_patches_and_reads_a_contact() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("created ") and "(jane@example.com)" in lines[0]
    assert lines[1] == "newsletters: [('mozilla-foundation', 'fr', True)]"
    assert lines[2] == "vpn_waitlist: {'geo': 'fr', 'platform': 'mac'}"
    assert lines[3] == "refused: Contact already exists ('primary_email',)"
