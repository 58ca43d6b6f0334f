"""A real pseudo-terminal for testing `agentflow chat` as a person uses it.

pexpect runs the command in a pty; pyte, a VT100 emulator, turns what it writes into the
screen a person would see (cursor moves, redraws and colours included), and answers the
terminal's cursor-position queries as a real terminal does.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pyte

ROOT = Path(__file__).resolve().parent.parent
CHAT_MODEL = str(ROOT / "tests" / "chat_model.py")


class Terminal:
    def __init__(self, args: list[str], cwd: Path, *, rows: int = 60, cols: int = 110,
                 env: dict[str, str] | None = None) -> None:
        self.screen = pyte.HistoryScreen(cols, rows, history=2000)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(sys.executable, ["-m", "agentflow.cli", *args], cwd=str(cwd),
                                   env={**os.environ, "TERM": "xterm-256color", "HOME": str(cwd), "COLUMNS": str(cols),
                                        "LINES": str(rows), **(env or {})},
                                   dimensions=(rows, cols), timeout=20)
        self.screen.write_process_input = lambda data: self.child.send(data)  # answer cursor-position queries
        self.log = b""

    def pump(self, seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=max(end - time.monotonic(), 0.01))
            except pexpect.TIMEOUT:
                data = b""
            except pexpect.EOF:
                return
            if data:
                self.log += data
                self.stream.feed(data)
            if time.monotonic() >= end:
                return

    def text(self) -> str:
        """Everything on the screen, with the lines scrolled off above it."""
        above = ["".join(ch.data for ch in line.values()).rstrip() for line in self.screen.history.top]
        return "\n".join([*above, *(line.rstrip() for line in self.screen.display)])

    def wait_for(self, needle: str | tuple[str, ...], timeout: float = 15.0, after: str = "") -> str:
        """Until `needle` shows (every one of them, for a tuple: a screen drawn in pieces may show one
        before the others), below the last line containing `after` when given; the screen text."""
        needles = (needle,) if isinstance(needle, str) else needle
        end = time.monotonic() + timeout
        while True:
            self.pump(0.05)
            screen = self.text()
            if all(n in (screen[screen.rfind(after):] if after else screen) for n in needles):
                return screen
            if time.monotonic() > end or not self.child.isalive():
                raise AssertionError(f"{needle!r} did not show within {timeout} s; the screen:\n{screen}")

    def type(self, text: str, enter: bool = True) -> None:
        self.child.send(text + ("\r" if enter else ""))

    def prompt(self, count: int) -> None:
        """Until the input prompt has shown `count` times (it shows again after every turn)."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            self.pump(0.05)
            if self.text().count("you>") >= count:
                return
        raise AssertionError(f"the prompt did not come back; the screen:\n{self.text()}")

    def close(self) -> int | None:
        if self.child.isalive():
            self.child.sendcontrol("d")
        self.finish()
        return self.child.exitstatus

    def finish(self, timeout: float = 10) -> None:
        """Until the program has ended, reading all it wrote."""
        end = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < end:
            self.pump(0.05)
        self.pump(0.1)
        self.child.close()
