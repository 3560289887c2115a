"""Run the postmaster and shut it down as soon as the CTMS process that started it is gone.

``EmbeddedPostgres`` runs this file as a script (``python -I -S``), so it may import the standard
library only. The owner holds the only write end of a pipe whose read end is passed here: the
kernel closes it however the owner ends, SIGKILL included, and end-of-file triggers a fast
shutdown. The postmaster is a child of this process rather than of CTMS so that nothing depends
on the owner staying alive long enough to clean up.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1
_FAST_SHUTDOWN_TIMEOUT = 60.0
_POLL_WITHOUT_PIDFD = 1.0


def _die_with(watchdog_pid: int) -> None:
    """Make the postmaster shut down fast if this watchdog is killed too.

    Runs in the child after the uid switch, which would otherwise clear the setting.
    """
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
    if os.getppid() != watchdog_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def _start_postmaster(config: dict[str, Any]) -> subprocess.Popen[bytes]:
    watchdog_pid = os.getpid()
    uid: int | None = config["uid"]
    return subprocess.Popen(  # noqa: S603 - argv built by EmbeddedPostgres
        config["argv"],
        stdin=subprocess.DEVNULL,
        env=config["env"],
        user=uid,
        group=config["gid"],
        extra_groups=[] if uid is not None else None,
        preexec_fn=lambda: _die_with(watchdog_pid),  # safe: this process has one thread
    )


def _wait_for_owner_or_exit(owner_pipe: int, postmaster: subprocess.Popen[bytes]) -> None:
    watched = [owner_pipe]
    timeout: float | None = None
    try:
        watched.append(os.pidfd_open(postmaster.pid))
    except (AttributeError, OSError):
        timeout = _POLL_WITHOUT_PIDFD
    while postmaster.poll() is None:
        readable, _, _ = select.select(watched, [], [], timeout)
        if owner_pipe in readable and not os.read(owner_pipe, 64):
            return


def main() -> int:
    config: dict[str, Any] = json.loads(sys.argv[1])
    postmaster = _start_postmaster(config)

    def fast_shutdown(*_: object) -> None:
        if postmaster.poll() is None:
            postmaster.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, fast_shutdown)
    signal.signal(signal.SIGHUP, fast_shutdown)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _wait_for_owner_or_exit(int(config["owner_pipe"]), postmaster)
    fast_shutdown()
    try:
        status = postmaster.wait(timeout=_FAST_SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        postmaster.send_signal(signal.SIGQUIT)  # immediate shutdown: recovery on next start
        status = postmaster.wait()
    if config.get("socket_dir_to_remove"):
        with contextlib.suppress(OSError):  # still in use by a newer server: keep it
            os.rmdir(config["socket_dir_to_remove"])
    return status


if __name__ == "__main__":
    sys.exit(main())
