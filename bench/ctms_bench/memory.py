"""Resident memory of a process tree, read from /proc (Linux only)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path("/proc", entry.name, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children = _children_by_parent()
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _status_bytes(pid: int, field_name: str) -> int:
    try:
        for line in Path("/proc", str(pid), "status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 if it is gone)."""
    return _status_bytes(pid, "VmRSS:")


def peak_rss_bytes(pid: int) -> int:
    """VmHWM of one process: the kernel's own peak of its RSS since start or the last
    `reset_peak_rss` — exact, unlike a sample, which misses a peak between two samples."""
    return _status_bytes(pid, "VmHWM:")


def reset_peak_rss(pid: int) -> None:
    """Lower the process's VmHWM to its current RSS (`/proc/<pid>/clear_refs`, Linux 4.0+), so the
    next `peak_rss_bytes` is the peak of what follows."""
    with contextlib.suppress(OSError):
        Path("/proc", str(pid), "clear_refs").write_text("5")


@dataclass(frozen=True)
class TreeRss:
    total: int  # sum over the tree (shared pages counted once per process)
    largest: int  # the largest single process
    processes: int


def tree_rss(root: int) -> TreeRss:
    sizes = [rss_bytes(pid) for pid in process_tree(root)]
    return TreeRss(sum(sizes), max(sizes, default=0), len(sizes))


@dataclass
class RssSampler:
    """Samples the RSS of a process tree in a background thread and keeps the peaks: `peak_largest` is
    the largest process's VmHWM (its exact peak since `reset`), `peak_total` the largest sampled sum
    over the tree."""

    root: int
    interval: float = 0.2
    peak_total: int = 0
    peak_largest: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> TreeRss:
        current = tree_rss(self.root)
        self.peak_total = max(self.peak_total, current.total)
        peaks = [peak_rss_bytes(pid) for pid in process_tree(self.root)]
        self.peak_largest = max(self.peak_largest, current.largest, *peaks)
        self.samples += 1
        return current

    def reset(self) -> None:
        for pid in process_tree(self.root):
            reset_peak_rss(pid)
        self.peak_total = self.peak_largest = self.samples = 0

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.sample()
                time.sleep(self.interval)

        self._thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, *, reaped_children: bool = False) -> tuple[str, float]:
    """(command name, user + system CPU seconds) of one process, plus those of its children that
    ended and were waited for if `reaped_children`; ("", 0) if it is gone."""
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return "", 0.0
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat.rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return name, ticks / _TICKS_PER_SECOND


def tree_cpu_seconds(root: int, *, only: str | None = None) -> float:
    """CPU seconds used so far by the processes of a tree (those named `only`, if given). With
    `only`, ended children count through their parent (PostgreSQL backends come and go)."""
    total = 0.0
    for pid in process_tree(root):
        name, seconds = _cpu_seconds(pid, reaped_children=only is not None)
        if only is None or name == only:
            total += seconds
    return total


def processes_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds used so far by each of `pids` still running."""
    found = {}
    for pid in pids:
        name, seconds = _cpu_seconds(pid)
        if name:
            found[pid] = seconds
    return found
