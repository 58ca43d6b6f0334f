"""Shell commands, Python code and test suites, run in a subprocess: with approval, a timeout and a working directory.

Both ask a human before every call by default (`requires_approval`): in memory that means they
are refused unless the agent has an `approve=` callback, in a durable run or `agentflow chat`
a person decides. A call that runs too long is killed with its whole process group. The
subprocess gets the environment without variables that look like secrets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

from agentflow.core.tool import Tool, ToolError


async def run_process(argv: list[str] | str, *, cwd: Path, timeout: float, max_output: int,
                      env: dict[str, str] | None = None) -> str:
    """Run it; the exit code and the combined output (cut to `max_output` characters). A run
    that times out is killed with its process group, and what it printed so far is kept."""
    spawn = asyncio.create_subprocess_shell if isinstance(argv, str) else asyncio.create_subprocess_exec
    args = [argv] if isinstance(argv, str) else argv
    proc = await spawn(*args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                       stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=env or child_env())
    out = bytearray()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            if len(out) <= max_output * 4:  # enough to show; the rest is read and dropped
                out.extend(chunk)
        await proc.wait()

    try:
        await asyncio.wait_for(pump(), timeout)
    except TimeoutError:
        _kill(proc)
        try:  # the pipe closes once the group is dead (unless something left the group)
            await asyncio.wait_for(pump(), 2)
        except TimeoutError:
            pass
        return f"killed after {timeout:g} s (the timeout)\n{_cut(bytes(out), max_output)}".rstrip()
    except BaseException:  # cancelled: leave nothing running
        _kill(proc)
        raise
    return f"exit code {proc.returncode}\n{_cut(bytes(out), max_output)}".rstrip()


SECRET = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


def child_env() -> dict[str, str]:
    """This process's environment without what looks like a secret (API keys, tokens, passwords):
    code the model wrote has no business reading them."""
    return {k: v for k, v in os.environ.items() if not any(word in k.upper() for word in SECRET)}


def python_env(cwd: Path) -> dict[str, str]:
    """`child_env()` for a Python subprocess that imports the modules in `cwd` and nothing our own
    PYTHON* settings would add."""
    return {k: v for k, v in child_env().items() if not k.startswith("PYTHON")} | {"PYTHONPATH": str(cwd)}


def _kill(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cut(out: bytes | None, limit: int) -> str:
    text = (out or b"").decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + f"\n[... cut at {limit} of {len(text)} characters]"


class Shell:
    """The `shell` tool: one command line through /bin/sh in `cwd`, killed after `timeout` seconds.
    `requires_approval=False` lets it run unasked: only for a sandbox you trust."""

    def __init__(self, cwd: str | os.PathLike[str] = ".", *, timeout: float = 30.0, max_output: int = 20_000,
                 requires_approval: bool = True, approval_timeout: float | None = None) -> None:
        self.cwd, self.timeout, self.max_output = Path(cwd).expanduser().resolve(), timeout, max_output
        self.requires_approval, self.approval_timeout = requires_approval, approval_timeout

    async def shell(self, command: Annotated[str, "a command line, run by /bin/sh in the working directory"]) -> str:
        """Run a shell command and return its exit code and output."""
        return await run_process(command, cwd=self.cwd, timeout=self.timeout, max_output=self.max_output)

    def tool(self) -> Tool[str]:
        return Tool(self.shell, requires_approval=self.requires_approval, approval_timeout=self.approval_timeout)


class Python:
    """The `run_python` tool: a program run by this Python in a fresh subprocess in `cwd` (whose
    modules it can import), killed after `timeout` seconds; approval required by default."""

    def __init__(self, cwd: str | os.PathLike[str] = ".", *, timeout: float = 30.0, max_output: int = 20_000,
                 requires_approval: bool = True, approval_timeout: float | None = None,
                 executable: str = sys.executable) -> None:
        self.cwd, self.timeout, self.max_output = Path(cwd).expanduser().resolve(), timeout, max_output
        self.requires_approval, self.approval_timeout, self.executable = requires_approval, approval_timeout, executable

    async def run_python(self, code: Annotated[str, "a complete Python program; print what you want to see"]) -> str:
        """Run a Python program and return its exit code and output (stdout and stderr)."""
        with tempfile.TemporaryDirectory(prefix="agentflow-py-") as tmp:
            script = Path(tmp) / "program.py"
            script.write_text(code, encoding="utf-8")
            # The working directory's modules are importable (as when a program is run from it), though the
            # program is not written there; -u keeps stdout and stderr in the order they were printed.
            env = python_env(self.cwd)
            return await run_process([self.executable, "-u", "-s", str(script)], cwd=self.cwd, timeout=self.timeout,
                                     max_output=self.max_output, env=env)

    def tool(self) -> Tool[str]:
        return Tool(self.run_python, requires_approval=self.requires_approval,
                    approval_timeout=self.approval_timeout)


class Tests:
    """The `run_tests` tool: the tests under `cwd`, with pytest when `executable` has it and unittest
    otherwise, killed after `timeout` seconds. Tests are code, so approval is required by default."""

    __test__ = False  # not a test class, though pytest would collect it by its name

    def __init__(self, cwd: str | os.PathLike[str] = ".", *, timeout: float = 120.0, max_output: int = 20_000,
                 requires_approval: bool = True, approval_timeout: float | None = None,
                 executable: str = sys.executable) -> None:
        self.cwd, self.timeout, self.max_output = Path(cwd).expanduser().resolve(), timeout, max_output
        self.requires_approval, self.approval_timeout, self.executable = requires_approval, approval_timeout, executable

    async def run_tests(self, path: Annotated[str, "a test file or directory under the working directory; "
                                                   "empty for all tests"] = "") -> str:
        """Run the tests and return the exit code and the test report."""
        target = (self.cwd / path).resolve()
        if not target.is_relative_to(self.cwd) or not target.exists():
            raise ToolError(f"{path!r} is not a file or directory under {self.cwd}")
        where = str(target.relative_to(self.cwd)) if path else "."
        has_pytest = await run_process([self.executable, "-c", "import pytest"], cwd=self.cwd, timeout=self.timeout,
                                       max_output=200)
        if has_pytest.startswith("exit code 0"):
            # the report is read by a model: plugins' start-up deprecation chatter is noise to it
            argv = [self.executable, "-W", "ignore::DeprecationWarning", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    where]
        elif target.is_file():
            argv = [self.executable, "-m", "unittest", "-v", where]
        else:
            argv = [self.executable, "-m", "unittest", "discover", "-v", "-s", where, "-t", "."]
        env = python_env(self.cwd)
        return await run_process(argv, cwd=self.cwd, timeout=self.timeout, max_output=self.max_output, env=env)

    def tool(self) -> Tool[str]:
        return Tool(self.run_tests, requires_approval=self.requires_approval,
                    approval_timeout=self.approval_timeout)


def shell(cwd: str | os.PathLike[str] = ".", **options: Any) -> Tool[str]:
    """A `shell` tool in `cwd` (see `Shell` for the options)."""
    return Shell(cwd, **options).tool()


def python(cwd: str | os.PathLike[str] = ".", **options: Any) -> Tool[str]:
    """A `run_python` tool in `cwd` (see `Python` for the options)."""
    return Python(cwd, **options).tool()


def tests(cwd: str | os.PathLike[str] = ".", **options: Any) -> Tool[str]:
    """A `run_tests` tool in `cwd` (see `Tests` for the options)."""
    return Tests(cwd, **options).tool()
