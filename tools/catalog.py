"""Tools by name, for personas and the `agentflow` command: `toolset(["files", "calculator"], root=...)`.

A name is one tool (`read_file`) or a group (`files` = read, list, find, write). Tools that
touch the world take their limits from `ToolConfig`: the files root and working directory,
the hosts `fetch` may reach, and the subprocess timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentflow.core.errors import ConfigError
from agentflow.core.tool import Tool

from .calculator import calculator
from .clock import add_days, days_between, now
from .files import Files
from .process import Python, Shell, Tests
from .web import Fetch


class ToolConfig(BaseModel):
    """Where and how far the ready-made tools may reach."""

    root: Path = Field(default=Path("."), description="files are confined here; shell and Python run here")
    allow_hosts: list[str] = Field(default_factory=list[str], description="hosts `fetch` may reach")
    timeout: float = Field(default=30.0, description="seconds a shell command or Python program may run")
    approval_timeout: float | None = None


Maker = Callable[[ToolConfig], list[Tool[Any]]]


def _files(writable: bool) -> Maker:
    return lambda c: Files(c.root, writable=writable).tools()


def _one(name: str) -> Maker:
    return lambda c: [t for t in Files(c.root).tools() if t.name == name]


GROUPS: dict[str, tuple[str, Maker]] = {
    "calculator": ("safe arithmetic", lambda c: [calculator]),
    "clock": ("the date and time, day arithmetic", lambda c: [now, days_between, add_days]),
    "files": ("read, list, find and write files under the root", _files(True)),
    "read_files": ("read, list and find files under the root (no writing)", _files(False)),
    "read_file": ("read one file under the root", _one("read_file")),
    "list_files": ("list a directory under the root", _one("list_files")),
    "find_files": ("find files by name or content under the root", _one("find_files")),
    "write_file": ("write a file under the root", _one("write_file")),
    "shell": ("run a shell command (asks for approval)",
              lambda c: [Shell(c.root, timeout=c.timeout, approval_timeout=c.approval_timeout).tool()]),
    "python": ("run a Python program (asks for approval)",
               lambda c: [Python(c.root, timeout=c.timeout, approval_timeout=c.approval_timeout).tool()]),
    "tests": ("run the tests under the root: pytest, else unittest (asks for approval)",
              lambda c: [Tests(c.root, timeout=max(c.timeout, 120.0), approval_timeout=c.approval_timeout).tool()]),
    "fetch": ("get a URL from an allowed host", lambda c: [Fetch(c.allow_hosts).tool()]),
}


def known() -> dict[str, str]:
    """Every tool or group name, with what it gives."""
    return {name: about for name, (about, _) in GROUPS.items()}


def toolset(names: Sequence[str], config: ToolConfig | None = None, **options: Any) -> list[Tool[Any]]:
    """The tools for `names`, configured by `config` (or by its fields as keywords); each tool once."""
    if config is not None and options:
        raise ConfigError(f"give toolset() a config or its fields as keywords, not both ({', '.join(options)})")
    config = config or ToolConfig(**options)
    made: dict[str, Tool[Any]] = {}
    for name in names:
        if name not in GROUPS:
            raise ConfigError(f"there is no ready-made tool {name!r}; known: {', '.join(GROUPS)}")
        for t in GROUPS[name][1](config):
            made.setdefault(t.name, t)
    return list(made.values())
