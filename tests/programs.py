"""Programs the tests start: conftest kills what is still running when each test ends, so a failing
test leaves none behind."""

from __future__ import annotations

import subprocess
from typing import Any

started: list[subprocess.Popen[Any]] = []


def kill_leftovers() -> None:
    while started:
        proc = started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
