"""One model server per model file on a machine, shared by every process that uses it.

Two processes each running their own `llama-server` on a 2-core machine thrash the cores (seen:
150-2,200 ms a token instead of ~35), so processes find each other's server through three files
in `<models dir>/servers/`, named for the model file and the server's arguments:

- `KEY.json`: the server's port and its guard's pid, written once it answers `/health`;
- `KEY.lease`: each process using the server holds a shared `flock` on it. The kernel drops it
  when the process ends, however it ends (SIGKILL too), so the guard (guard.py) knows the last
  user has gone when it can take the lock exclusively, and stops the server;
- `KEY.start`: held exclusively while a process looks for the server and, finding none, starts
  it, so processes arriving together start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from .catalog import models_dir


@dataclass(frozen=True)
class Place:
    """Where one server's files are."""

    state: Path
    lease: Path
    start: Path
    log: Path


@dataclass(frozen=True)
class Found:
    port: int
    pid: int


def place(model_path: Path, args: tuple[str, ...]) -> Place:
    key = hashlib.sha256("\0".join((str(model_path.resolve()), *args)).encode()).hexdigest()[:12]
    base = models_dir() / "servers" / f"{model_path.stem}-{key}"
    base.parent.mkdir(parents=True, exist_ok=True)
    return Place(*(base.with_name(base.name + suffix) for suffix in (".json", ".lease", ".start", ".log")))


def hold(lease: Path) -> int:
    """Join the server's users; closing the returned descriptor (or exiting) leaves."""
    fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def alone(lease: Path) -> int | None:
    """The lease held exclusively if no process uses the server (close it when done), else None."""
    fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


@contextlib.contextmanager
def starting(start: Path) -> Generator[None]:
    fd = os.open(start, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read(state: Path) -> Found | None:
    try:
        data = json.loads(state.read_text())
        return Found(int(data["port"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(state: Path, found: Found) -> None:
    temporary = state.with_suffix(".tmp")
    temporary.write_text(json.dumps({"port": found.port, "pid": found.pid}))
    os.replace(temporary, state)


def forget(state: Path, pid: int) -> None:
    """Remove the state file if it still names this guard (a newer server may have replaced it)."""
    found = read(state)
    if found is not None and found.pid == pid:
        state.unlink(missing_ok=True)


def running(pid: int) -> bool:
    """Whether a process is alive (a zombie is not: its parent has not yet read its exit)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS)
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
