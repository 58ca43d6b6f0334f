"""`python -m agentflow.local.guard -- COMMAND...`: runs COMMAND and stops it when its owner goes.

The owner (the agentflow process) holds the write end of this process's stdin. When the owner
exits for any reason (normal exit, Ctrl-C, an exception, SIGKILL) the pipe closes, the read below
returns, and the command is stopped: no orphaned `llama-server` keeps 1 GB of memory. On Linux
the command also gets a parent-death signal, so it dies even if this guard is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _owner_left(*_: object) -> None:  # SIGTERM is treated like the owner leaving
    os.close(0)


def main(argv: list[str]) -> int:
    command = argv[1:] if argv and argv[0] == "--" else argv
    if not command:
        print("usage: python -m agentflow.local.guard -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner decides when to stop
    signal.signal(signal.SIGTERM, _owner_left)
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                             preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

    def child_exited() -> None:
        code = child.wait()
        os._exit(code if code >= 0 else 128 - code)  # the owner reads the server's exit from ours

    threading.Thread(target=child_exited, daemon=True).start()
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
