"""Optional: sample the server with py-spy while a scenario runs, and summarise the hot spots."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Profile:
    output: Path
    samples: int
    top_self: list[tuple[str, float]]  # (frame, share of samples)
    top_inclusive: list[tuple[str, float]]


def start_py_spy(py_spy: str, pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_LOCATION = re.compile(r" \((?P<file>[^()]*):\d+\)$")


def _frame_name(frame: str) -> str:
    """`handle (litestar/routes/http.py:123)` → `handle (litestar/routes/http.py)`, shortened to the
    package-relative path so frames of one function add up."""
    match = _LOCATION.search(frame)
    if match is None:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame[: match.start()]} ({path})"


def summarise(output: Path, top: int = 25) -> Profile:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in output.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        # The first frame names the process/thread with --subprocesses; idle event-loop waits are
        # real samples too (they show how much time the worker had nothing to do).
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = 1 / total if total else 0.0
    return Profile(
        output=output,
        samples=total,
        top_self=[(name, n * share) for name, n in self_counts.most_common(top)],
        top_inclusive=[(name, n * share) for name, n in inclusive.most_common(top * 2)],
    )
