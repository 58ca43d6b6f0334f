"""`python -m agentflow.local.guard --lease FILE -- COMMAND...`: runs COMMAND while anyone uses it.

Every process using the server holds a shared lock on FILE (see lease.py). The guard stops the
command when it can take that lock exclusively: the last user has gone, however it went (a normal
exit, Ctrl-C, an exception, SIGKILL), so no orphaned `llama-server` keeps 1 GB of memory. It then
removes the server's state file, if that still names this guard. SIGTERM stops it at once. On
Linux the command also gets a parent-death signal, so it dies even if this guard is killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

POLL = 0.25  # seconds between looks at the lease: how long a server outlives its last user


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _forget(state: Path) -> None:
    """lease.forget without importing agentflow (this process stays small)."""
    try:
        if json.loads(state.read_text()).get("pid") == os.getpid():
            state.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--lease" or argv[2] != "--":
        print("usage: python -m agentflow.local.guard --lease FILE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    lease, command = Path(argv[1]), argv[3:]
    stopped = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the users decide when to stop
    signal.signal(signal.SIGTERM, lambda _signal, _frame: stopped.set())
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def child_exited() -> None:
        code = child.wait()
        os._exit(code if code >= 0 else 128 - code)  # the starter reads the server's exit from ours

    threading.Thread(target=child_exited, daemon=True).start()
    fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o600)
    while not stopped.wait(POLL):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        _forget(lease.with_suffix(".json"))  # still holding the lease: nobody joins meanwhile
        break
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
