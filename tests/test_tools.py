"""The ready-made tools (`agentflow.tools`): files confined to a root, shell and Python with approval and
timeouts, fetch limited to allowed hosts, the clock, the catalog and the calculator.

Tools are called through `Tool.call(...)`, as the agent loop calls them. The only network used is a
local HTTP server on 127.0.0.1 that the tests start themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agentflow.tools import (
    Fetch,
    Files,
    Python,
    Shell,
    Tests,
    ToolConfig,
    add_days,
    calculator,
    days_between,
    fetch,
    files,
    html_text,
    known,
    now,
    python,
    shell,
    toolset,
)
from agentflow.tools.catalog import GROUPS

from agentflow import Agent, Tool
from agentflow.core.errors import ConfigError
from agentflow.core.result import RunResult, ToolStep
from agentflow.core.tool import ToolArgumentsError, ToolError
from agentflow.models.scripted import ScriptedModel, call
from tests.test_tool import assert_strict, sdk_strict

# -- helpers ------------------------------------------------------------------------------------


def by_name(tools: list[Tool[Any]]) -> dict[str, Tool[Any]]:
    return {t.name: t for t in tools}


def tool_steps(result: RunResult[Any]) -> list[ToolStep]:
    return [s for s in result.steps if isinstance(s, ToolStep)]


def is_dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (PID 1 in a container may never reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # it went away between the two looks
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if is_dead(pid):
            return True
        time.sleep(0.02)
    return is_dead(pid)


def read_pid(path: Path, within: float = 3.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"no pid in {path}")


# -- files --------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with a few files, and a sibling directory outside it holding a secret."""
    root = tmp_path / "root"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "README.md").write_text("# Project\nhello world\n")
    (root / "src" / "main.py").write_text("import pkg\nprint('needle')\n")
    (root / "src" / "pkg" / "util.py").write_text("def helper():\n    return 1\n")
    (root / "src" / "pkg" / "notes.txt").write_text("needle in a text file\n")
    (root / ".git").mkdir()
    (root / ".git" / "hook.py").write_text("needle\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the secret\n")
    return root


@pytest.fixture
def ftools(tree: Path) -> dict[str, Tool[Any]]:
    return by_name(files(tree))


async def test_files_gives_four_tools_and_read_only_leaves_out_write(tree: Path) -> None:
    assert list(by_name(files(tree))) == ["read_file", "list_files", "find_files", "write_file"]
    assert list(by_name(files(tree, writable=False))) == ["read_file", "list_files", "find_files"]
    assert not any(t.requires_approval for t in files(tree))


async def test_files_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        Files(tmp_path / "missing")


async def test_read_file(ftools: dict[str, Tool[Any]]) -> None:
    assert await ftools["read_file"].call({"path": "src/main.py"}) == "import pkg\nprint('needle')\n"
    assert await ftools["read_file"].call('{"path": "README.md"}') == "# Project\nhello world\n"


async def test_read_file_absolute_path_inside_the_root_is_fine(tree: Path, ftools: dict[str, Tool[Any]]) -> None:
    assert await ftools["read_file"].call({"path": str(tree / "README.md")}) == "# Project\nhello world\n"


async def test_list_files(ftools: dict[str, Tool[Any]]) -> None:
    listing = (await ftools["list_files"].call({})).splitlines()
    assert listing == [".git/", "src/", "README.md  22"]  # directories first, files with their size
    assert (await ftools["list_files"].call({"path": "src"})).splitlines() == ["pkg/", "main.py  27"]


async def test_list_files_of_an_empty_or_missing_directory(tree: Path, ftools: dict[str, Tool[Any]]) -> None:
    (tree / "empty").mkdir()
    assert "'empty' is empty" in await ftools["list_files"].call({"path": "empty"})
    with pytest.raises(ToolError, match="no directory 'nope'"):
        await ftools["list_files"].call({"path": "nope"})


async def test_find_files_by_pattern(ftools: dict[str, Tool[Any]]) -> None:
    found = await ftools["find_files"].call({"pattern": "*.py"})
    assert found.splitlines() == ["src/main.py", "src/pkg/util.py"]  # .git is skipped
    assert (await ftools["find_files"].call({"pattern": "*.py", "path": "src/pkg"})) == "src/pkg/util.py"


async def test_find_files_containing(ftools: dict[str, Tool[Any]]) -> None:
    found = await ftools["find_files"].call({"pattern": "*", "containing": "needle"})
    assert found.splitlines() == ["src/main.py", "src/pkg/notes.txt"]
    found = await ftools["find_files"].call({"pattern": "*.py", "containing": "needle"})
    assert found == "src/main.py"
    # null means "no filter", as a strict-mode model sends it
    assert (await ftools["find_files"].call({"pattern": "*.py", "containing": None})).count("\n") == 1


async def test_find_files_with_no_match_says_so(ftools: dict[str, Tool[Any]]) -> None:
    assert await ftools["find_files"].call({"pattern": "*.rs"}) == "no file matches '*.rs'"
    assert await ftools["find_files"].call({"pattern": "*.py", "containing": "zebra"}) == \
        "no file matches '*.py' containing 'zebra'"


async def test_find_and_list_are_capped(tree: Path) -> None:
    for i in range(5):
        (tree / f"f{i}.log").write_text("x")
    t = by_name(files(tree, max_results=3))
    found = (await t["find_files"].call({"pattern": "*.log"})).splitlines()
    assert found[:3] == ["f0.log", "f1.log", "f2.log"]
    assert found[3] == "[... more than 3; narrow the search]" and len(found) == 4
    listing = (await t["list_files"].call({})).splitlines()
    assert len(listing) == 4 and listing[-1].startswith("[... more than 3")


async def test_write_file_creates_directories_and_replaces(tree: Path, ftools: dict[str, Tool[Any]]) -> None:
    assert await ftools["write_file"].call({"path": "new/deep/a.txt", "content": "héllo"}) == \
        "wrote 6 bytes to new/deep/a.txt"
    assert (tree / "new" / "deep" / "a.txt").read_text(encoding="utf-8") == "héllo"
    await ftools["write_file"].call({"path": "README.md", "content": "replaced"})
    assert (tree / "README.md").read_text() == "replaced"
    assert await ftools["read_file"].call({"path": "new/deep/a.txt"}) == "héllo"


async def test_write_file_onto_a_directory_is_refused(ftools: dict[str, Tool[Any]]) -> None:
    with pytest.raises(ToolError, match="'src' is a directory"):
        await ftools["write_file"].call({"path": "src", "content": "x"})


@pytest.mark.parametrize("tool, args", [
    ("read_file", {"path": "../outside/secret.txt"}),
    ("read_file", {"path": "src/../../outside/secret.txt"}),
    ("read_file", {"path": "/etc/passwd"}),
    ("list_files", {"path": ".."}),
    ("list_files", {"path": "/"}),
    ("find_files", {"pattern": "*", "path": "../outside"}),
    ("write_file", {"path": "../x", "content": "pwned"}),
    ("write_file", {"path": "{outside}/new.txt", "content": "pwned"}),
    ("read_file", {"path": "{outside}/secret.txt"}),
])
async def test_paths_outside_the_root_are_refused_naming_the_root(tree: Path, ftools: dict[str, Tool[Any]],
                                                                  tool: str, args: dict[str, Any]) -> None:
    outside = tree.parent / "outside"
    args = {**args, "path": args["path"].replace("{outside}", str(outside))}
    with pytest.raises(ToolError) as caught:
        await ftools[tool].call(args)
    message = str(caught.value)
    assert "is outside the working directory" in message
    assert str(tree.resolve()) in message  # names the root, so the model can correct itself
    assert repr(args["path"]) in message
    assert not (tree.parent / "x").exists()  # nothing written outside
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_symlinks_pointing_outside_are_refused_for_read_and_write(tree: Path,
                                                                         ftools: dict[str, Tool[Any]]) -> None:
    outside = tree.parent / "outside"
    (tree / "leak.txt").symlink_to(outside / "secret.txt")
    (tree / "door").symlink_to(outside, target_is_directory=True)
    (tree / "dangling.txt").symlink_to(outside / "not-yet.txt")

    for path in ("leak.txt", "door/secret.txt"):
        with pytest.raises(ToolError, match=re.escape(str(tree.resolve()))):
            await ftools["read_file"].call({"path": path})
    for path in ("leak.txt", "door/secret.txt", "door/new.txt", "dangling.txt"):
        with pytest.raises(ToolError, match="outside the working directory"):
            await ftools["write_file"].call({"path": path, "content": "pwned"})
    with pytest.raises(ToolError, match="outside the working directory"):
        await ftools["list_files"].call({"path": "door"})
    with pytest.raises(ToolError, match="outside the working directory"):
        await ftools["find_files"].call({"pattern": "*", "path": "door"})

    # nothing was written outside
    assert (outside / "secret.txt").read_text() == "the secret\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # and a search neither lists the link to the outside file nor looks into the linked directory
    assert "leak.txt" not in await ftools["find_files"].call({"pattern": "*.txt"})
    assert await ftools["find_files"].call({"pattern": "*", "containing": "the secret"}) == \
        "no file matches '*' containing 'the secret'"


async def test_symlink_staying_inside_the_root_is_followed(tree: Path, ftools: dict[str, Tool[Any]]) -> None:
    (tree / "alias.md").symlink_to(tree / "README.md")
    assert await ftools["read_file"].call({"path": "alias.md"}) == "# Project\nhello world\n"


async def test_reading_a_missing_file(ftools: dict[str, Tool[Any]]) -> None:
    with pytest.raises(ToolError, match="there is no file 'src/nope.py'; list_files shows what exists"):
        await ftools["read_file"].call({"path": "src/nope.py"})
    with pytest.raises(ToolError, match="there is no file 'src'"):  # a directory is not a file
        await ftools["read_file"].call({"path": "src"})


async def test_reading_a_binary_file_is_refused(tree: Path, ftools: dict[str, Tool[Any]]) -> None:
    (tree / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    with pytest.raises(ToolError, match="'image.png' is a binary file, not text"):
        await ftools["read_file"].call({"path": "image.png"})


async def test_a_large_file_is_cut_with_a_note(tree: Path) -> None:
    (tree / "big.txt").write_text("a" * 1000)
    text = await by_name(files(tree, max_bytes=100))["read_file"].call({"path": "big.txt"})
    assert text == "a" * 100 + "\n[... cut at 100 bytes of 1000]"
    (tree / "exact.txt").write_text("b" * 100)  # exactly the limit: no note
    assert await by_name(files(tree, max_bytes=100))["read_file"].call({"path": "exact.txt"}) == "b" * 100


async def test_files_arguments_are_validated(ftools: dict[str, Tool[Any]]) -> None:
    with pytest.raises(ToolArgumentsError, match="path"):
        await ftools["read_file"].call({})
    with pytest.raises(ToolArgumentsError, match="unknown field"):
        await ftools["read_file"].call({"path": "README.md", "mode": "rb"})


# -- shell and python ---------------------------------------------------------------------------


async def test_shell_output_and_exit_code(tmp_path: Path) -> None:
    t = shell(tmp_path)
    assert await t.call({"command": "echo hello; echo oops >&2; exit 3"}) == "exit code 3\nhello\noops"
    assert await t.call({"command": "true"}) == "exit code 0"


async def test_shell_runs_in_its_cwd(tmp_path: Path) -> None:
    t = shell(tmp_path)
    assert await t.call({"command": "pwd -P; touch made-here"}) == f"exit code 0\n{tmp_path.resolve()}"
    assert (tmp_path / "made-here").exists()


async def test_shell_output_is_cut(tmp_path: Path) -> None:
    out = await shell(tmp_path, max_output=10).call({"command": "head -c 100 /dev/zero | tr '\\0' x"})
    assert out == "exit code 0\n" + "x" * 10 + "\n[... cut at 10 of 100 characters]"


async def test_shell_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    t = shell(tmp_path, timeout=0.5)
    started = time.monotonic()
    out = await t.call({"command": "sleep 30 & echo $! > child.pid; sleep 30"})
    assert time.monotonic() - started < 5
    assert out.startswith("killed after 0.5 s (the timeout)")
    child = read_pid(tmp_path / "child.pid")
    assert wait_dead(child), f"the background child {child} survived the timeout"


async def test_shell_timeout_keeps_the_output_so_far(tmp_path: Path) -> None:
    out = await shell(tmp_path, timeout=0.5).call({"command": "echo before-the-timeout; sleep 30"})
    assert out.startswith("killed after 0.5 s")
    assert "before-the-timeout" in out


async def test_shell_and_python_require_approval_by_default(tmp_path: Path) -> None:
    assert shell(tmp_path).requires_approval is True
    assert python(tmp_path).requires_approval is True
    assert Shell(tmp_path).tool().name == "shell" and Python(tmp_path).tool().name == "run_python"
    assert shell(tmp_path, requires_approval=False).requires_approval is False
    assert python(tmp_path, approval_timeout=5).approval_timeout == 5


async def test_an_agent_without_approve_does_not_run_the_shell(tmp_path: Path) -> None:
    model = ScriptedModel([call("shell", command="touch ran.txt"), call("finish", answer="done")])
    agent = Agent("ops", "You run commands.", tools=[shell(tmp_path)], model=model)
    result = await agent.run("make a file")
    assert result.ok and result.output == "done"
    (step,) = [s for s in tool_steps(result) if s.call.name == "shell"]
    assert step.error == "rejected"
    assert "was not approved" in step.observation and "did not run" in step.observation
    assert not (tmp_path / "ran.txt").exists()
    # the model read that observation
    assert model.requests[1].messages[-1].content == step.observation


async def test_an_agent_with_approve_runs_the_shell(tmp_path: Path) -> None:
    seen: list[str] = []

    def approve(c: Any, t: Tool[Any]) -> bool:
        seen.append(f"{t.name}:{json.loads(c.arguments)['command']}")
        return True

    model = ScriptedModel([call("shell", command="touch ran.txt && echo ok"), call("finish", answer="done")])
    agent = Agent("ops", tools=[shell(tmp_path)], model=model, approve=approve)
    result = await agent.run("make a file")
    (step,) = [s for s in tool_steps(result) if s.call.name == "shell"]
    assert step.error is None and step.observation == "exit code 0\nok"
    assert (tmp_path / "ran.txt").exists()
    assert seen == ["shell:touch ran.txt && echo ok"]


async def test_an_agent_whose_approve_says_no_does_not_run_python(tmp_path: Path) -> None:
    code = "open('ran.txt', 'w').write('x')"
    model = ScriptedModel([call("run_python", code=code), call("finish", answer="done")])
    agent = Agent("ops", tools=[python(tmp_path)], model=model, approve=lambda c, t: False)
    result = await agent.run("make a file")
    (step,) = [s for s in tool_steps(result) if s.call.name == "run_python"]
    assert step.error == "rejected" and "was not approved" in step.observation
    assert not (tmp_path / "ran.txt").exists()


async def test_python_output_exit_code_and_cwd(tmp_path: Path) -> None:
    t = python(tmp_path)
    code = ("import os, sys\nprint(os.getcwd(), flush=True)\nprint('to stderr', file=sys.stderr)\n"
            "open('out.txt', 'w').write('hi')")
    assert await t.call({"code": code}) == f"exit code 0\n{tmp_path.resolve()}\nto stderr"
    assert (tmp_path / "out.txt").read_text() == "hi"
    assert await t.call({"code": "raise SystemExit(7)"}) == "exit code 7"


async def test_python_error_gives_a_traceback_and_nonzero_exit(tmp_path: Path) -> None:
    out = await python(tmp_path).call({"code": "print('start')\ndef f():\n    return 1 / 0\nf()\n"})
    assert out.startswith("exit code 1\nstart\n")
    assert "Traceback (most recent call last):" in out
    assert "ZeroDivisionError: division by zero" in out
    out = await python(tmp_path).call({"code": "def broken(:\n"})
    assert out.startswith("exit code 1") and "SyntaxError" in out


async def test_python_timeout_kills_it_and_its_children(tmp_path: Path) -> None:
    code = ("import subprocess, time\n"
            "child = subprocess.Popen(['sleep', '30'])\n"
            "open('child.pid', 'w').write(str(child.pid))\n"
            "time.sleep(30)\n")
    started = time.monotonic()
    out = await python(tmp_path, timeout=0.5).call({"code": code})
    assert time.monotonic() - started < 5
    assert out.startswith("killed after 0.5 s (the timeout)")
    child = read_pid(tmp_path / "child.pid")
    assert wait_dead(child), f"the child {child} survived the timeout"


PASSING = "import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        self.assertEqual(2 + 2, 4)\n"
FAILING = PASSING.replace("4)", "5)").replace("test_ok", "test_wrong")


async def test_run_tests_reports_passing_and_failing_tests(tmp_path: Path) -> None:
    (tmp_path / "test_good.py").write_text(PASSING)
    t = Tests(tmp_path, requires_approval=False).tool()
    assert t.requires_approval is False and Tests(tmp_path).tool().requires_approval  # code runs: asked by default
    out = await t.call({})
    assert out.startswith("exit code 0") and "1 passed" in out
    assert "Deprecat" not in out  # plugin start-up chatter is kept from the model
    (tmp_path / "test_bad.py").write_text(FAILING)
    out = await t.call({})
    assert out.startswith("exit code 1") and "1 failed, 1 passed" in out and "AssertionError" in out
    out = await t.call({"path": "test_good.py"})  # one file only
    assert out.startswith("exit code 0") and "1 passed" in out


async def test_run_tests_falls_back_to_unittest_without_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_good.py").write_text(PASSING)
    (tmp_path / "test_bad.py").write_text(FAILING)
    no_pytest = tmp_path / "python-without-site"  # -S: no site-packages, so no pytest
    no_pytest.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    no_pytest.chmod(0o755)
    t = Tests(tmp_path, requires_approval=False, executable=str(no_pytest))
    out = await t.run_tests()
    assert out.startswith("exit code 1") and "Ran 2 tests" in out and "FAILED (failures=1)" in out
    out = await t.run_tests("test_good.py")
    assert out.startswith("exit code 0") and "Ran 1 test" in out and "OK" in out


async def test_run_tests_stays_under_its_root(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    (tmp_path / "test_outside.py").write_text(PASSING)
    t = Tests(tmp_path / "inner", requires_approval=False).tool()
    for path in ("..", "../test_outside.py", "/etc", "missing.py"):
        with pytest.raises(ToolError, match="is not a file or directory under"):
            await t.call({"path": path})


async def test_a_cancelled_shell_call_leaves_nothing_running(tmp_path: Path) -> None:
    t = shell(tmp_path, timeout=30)
    task = asyncio.create_task(t.call({"command": "echo $$ > sh.pid; sleep 30"}))
    pid = await asyncio.to_thread(read_pid, tmp_path / "sh.pid")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_dead(pid)


# -- fetch --------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head><title>Title</title><style>body { color: red }</style></head>
<body><script>var secret = "in a script";</script><h1>Welcome</h1><p>Hello &amp; goodbye</p>
<div>second   block</div><noscript>enable js</noscript></body></html>"""


class Server:
    """A local HTTP server recording the paths it was asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.paths.append(self.path)
                route = self.path.split("?")[0]
                if route == "/page":
                    self.reply(200, "text/html; charset=utf-8", PAGE.encode())
                elif route == "/plain":
                    self.reply(200, "text/plain; charset=utf-8", b"just text <b>not html</b>")
                elif route == "/big":
                    self.reply(200, "text/plain", b"0123456789" * 1000)
                elif route == "/to-page":
                    self.redirect("/page")
                elif route == "/to-localhost":
                    self.redirect(f"http://localhost:{server.port}/page")
                elif route == "/loop":
                    self.redirect("/loop")
                else:
                    self.reply(404, "text/plain", b"not found")

            def reply(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=lambda: self.httpd.serve_forever(poll_interval=0.05), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


async def test_fetch_an_allowed_host_reduces_html_to_text(server: Server) -> None:
    out = await fetch(["127.0.0.1"]).call({"url": server.url("/page")})
    assert out.splitlines()[0] == "HTTP 200 text/html; charset=utf-8"
    assert "Welcome" in out and "Hello & goodbye" in out and "second block" in out
    for dropped in ("secret", "color: red", "<", "Title", "enable js"):
        assert dropped not in out
    assert server.paths == ["/page"]


async def test_fetch_plain_text_is_kept_as_it_is(server: Server) -> None:
    out = await fetch(["127.0.0.1"]).call({"url": server.url("/plain")})
    assert out == "HTTP 200 text/plain; charset=utf-8\njust text <b>not html</b>"
    assert (await fetch(["127.0.0.1"]).call({"url": server.url("/missing")})).startswith("HTTP 404")


async def test_fetch_a_host_not_allowed_makes_no_request(server: Server) -> None:
    with pytest.raises(ToolError) as caught:
        await fetch(["example.com", "*.docs.python.org"]).call({"url": server.url("/page")})
    message = str(caught.value)
    assert "fetching from '127.0.0.1' is not allowed" in message
    assert "allowed hosts: example.com, *.docs.python.org" in message
    assert "allow_hosts" in message  # says how to allow it
    assert server.paths == []


async def test_fetch_by_default_refuses_everything(server: Server) -> None:
    t = fetch()
    for url in (server.url("/page"), f"http://localhost:{server.port}/page", "https://example.com/"):
        with pytest.raises(ToolError, match=r"not allowed \(allowed hosts: none\)"):
            await t.call({"url": url})
    assert server.paths == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "127.0.0.1/page", "javascript:alert(1)"])
async def test_fetch_refuses_non_http_urls(server: Server, url: str) -> None:
    with pytest.raises(ToolError, match="is not an http\\(s\\) URL"):
        await fetch(["127.0.0.1", "*"]).call({"url": url})
    assert server.paths == []


async def test_fetch_follows_a_redirect_within_allowed_hosts(server: Server) -> None:
    out = await fetch(["127.0.0.1"]).call({"url": server.url("/to-page")})
    assert out.startswith("HTTP 200") and "Welcome" in out
    assert server.paths == ["/to-page", "/page"]


async def test_fetch_refuses_a_redirect_to_a_host_not_allowed(server: Server) -> None:
    with pytest.raises(ToolError, match="fetching from 'localhost' is not allowed"):
        await fetch(["127.0.0.1"]).call({"url": server.url("/to-localhost")})
    assert server.paths == ["/to-localhost"]  # the redirect target was never requested


async def test_fetch_stops_a_redirect_loop(server: Server) -> None:
    with pytest.raises(ToolError, match="more than 5 redirects"):
        await fetch(["127.0.0.1"]).call({"url": server.url("/loop")})
    assert server.paths == ["/loop"] * 6


async def test_fetch_cuts_a_large_body_with_a_note(server: Server) -> None:
    out = await fetch(["127.0.0.1"], max_bytes=25).call({"url": server.url("/big")})
    assert out == "HTTP 200 text/plain\n0123456789012345678901234\n[... cut at 25 bytes]"
    out = await fetch(["127.0.0.1"]).call({"url": server.url("/big")})
    assert out == "HTTP 200 text/plain\n" + "0123456789" * 1000


def test_fetch_allowed_hosts_and_wildcards() -> None:
    f = Fetch(["Example.COM ", "*.docs.example.org"])
    assert f.allowed("example.com") and f.allowed("EXAMPLE.com")
    assert not f.allowed("www.example.com") and not f.allowed("example.com.evil.net")
    assert not f.allowed("notexample.com")
    assert f.allowed("docs.example.org")  # `*.x` also matches `x`
    assert f.allowed("a.docs.example.org") and f.allowed("a.b.docs.example.org")
    assert not f.allowed("evildocs.example.org") and not f.allowed("example.org")
    assert not f.allowed("docs.example.org.evil.net")
    assert not Fetch().allowed("example.com") and not Fetch().allowed("")


def test_fetch_check_uses_the_url_host_not_the_userinfo() -> None:
    f = Fetch(["allowed.example"])
    f.check("https://allowed.example:8443/path?q=1")
    for url in ("http://allowed.example@evil.example/", "http://allowed.example:80@evil.example/",
                "http://evil.example#@allowed.example", "http://allowed.example.evil.example/"):
        with pytest.raises(ToolError, match="evil.example"):
            f.check(url)


def test_html_text() -> None:
    assert html_text("<p>a</p><p>b</p><ul><li>one</li><li>two</li></ul>") == "a\nb\none\ntwo"
    assert html_text("<div>x  \t y</div><svg><text>drawn</text></svg><br>z") == "x y\nz"


def test_html_text_without_a_closing_head_tag_keeps_the_body() -> None:
    assert html_text("<html><head><title>T</title><body><p>The body text</p></body></html>") == "The body text"


# -- clock --------------------------------------------------------------------------------------

WEEKDAY = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"


async def test_now_in_utc() -> None:
    out = await now.call({"timezone": "UTC"})
    match = re.fullmatch(rf"(\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00) \({WEEKDAY}, UTC\)", out)
    assert match, out
    moment = datetime.fromisoformat(match.group(1))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5
    assert match.group(2) == moment.strftime("%A")
    assert (await now.call("{}")).endswith(", UTC)")  # UTC is the default


async def test_now_in_another_zone() -> None:
    out = await now.call('{"timezone": "Asia/Kolkata"}')
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30 \({WEEKDAY}, Asia/Kolkata\)", out), out


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "/etc/localtime", "CEST+2"])
async def test_now_with_a_bad_zone_names_iana(zone: str) -> None:
    with pytest.raises(ToolError, match=f"{re.escape(repr(zone))} is not a time zone; use an IANA name"):
        await now.call({"timezone": zone})


async def test_now_with_a_zone_directory_names_iana() -> None:
    with pytest.raises(ToolError, match="IANA"):
        await now.call({"timezone": "Europe"})


async def test_days_between() -> None:
    assert await days_between.call('{"start": "2024-02-28", "end": "2024-03-01"}') == 2  # a leap year
    assert await days_between.call('{"start": "2023-02-28", "end": "2023-03-01"}') == 1
    assert await days_between.call('{"start": "2025-01-01", "end": "2024-01-01"}') == -366
    with pytest.raises(ToolArgumentsError, match="end"):
        await days_between.call('{"start": "2024-01-01", "end": "next tuesday"}')


async def test_add_days() -> None:
    assert await add_days.call('{"day": "2024-12-31", "days": 1}') == "2025-01-01 (Wednesday)"
    assert await add_days.call('{"day": "2024-03-01", "days": -1}') == "2024-02-29 (Thursday)"
    assert await add_days.call('{"day": "2024-01-01", "days": 0}') == "2024-01-01 (Monday)"
    with pytest.raises(ToolArgumentsError, match="days"):
        await add_days.call('{"day": "2024-01-01", "days": "a week"}')


# -- catalog ------------------------------------------------------------------------------------


async def test_toolset_by_names(tmp_path: Path) -> None:
    tools = toolset(["files", "calculator", "shell"], root=tmp_path)
    assert [t.name for t in tools] == ["read_file", "list_files", "find_files", "write_file", "calculator", "shell"]
    t = by_name(tools)
    assert t["shell"].requires_approval is True
    assert await t["shell"].call({"command": "pwd -P"}) == f"exit code 0\n{tmp_path.resolve()}"  # root is its cwd
    await t["write_file"].call({"path": "a.txt", "content": "in the root"})
    assert (tmp_path / "a.txt").read_text() == "in the root"


async def test_toolset_takes_a_config(tmp_path: Path) -> None:
    config = ToolConfig(root=tmp_path, allow_hosts=["example.com"], timeout=0.5, approval_timeout=7)
    t = by_name(toolset(["python", "fetch", "clock", "read_files"], config))
    assert list(t) == ["run_python", "fetch", "now", "days_between", "add_days", "read_file", "list_files",
                       "find_files"]
    assert t["run_python"].approval_timeout == 7
    assert (await t["run_python"].call({"code": "import time; time.sleep(30)"})).startswith("killed after 0.5 s")
    with pytest.raises(ToolError, match=r"allowed hosts: example.com\)"):
        await t["fetch"].call({"url": "http://127.0.0.1:9/"})


def test_toolset_gives_each_tool_once(tmp_path: Path) -> None:
    tools = toolset(["read_file", "files", "calculator", "read_files", "calculator", "write_file"], root=tmp_path)
    assert [t.name for t in tools] == ["read_file", "list_files", "find_files", "write_file", "calculator"]


def test_toolset_single_file_tools(tmp_path: Path) -> None:
    assert [t.name for t in toolset(["write_file"], root=tmp_path)] == ["write_file"]
    assert [t.name for t in toolset(["find_files", "list_files"], root=tmp_path)] == ["find_files", "list_files"]
    assert [t.name for t in toolset(["read_files"], root=tmp_path)] == ["read_file", "list_files", "find_files"]
    assert toolset([], root=tmp_path) == []


def test_toolset_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        toolset(["files", "browser"], root=tmp_path)
    message = str(caught.value)
    assert "there is no ready-made tool 'browser'" in message
    for name in known():
        assert name in message


def test_known_describes_every_group() -> None:
    assert list(known()) == list(GROUPS)
    assert {"calculator", "clock", "files", "read_files", "shell", "python", "fetch"} <= set(known())
    assert all(isinstance(about, str) and about for about in known().values())


def _every_tool(root: Path) -> list[Tool[Any]]:
    config = ToolConfig(root=root, allow_hosts=["example.com"])
    return [t for name in GROUPS for t in toolset([name], config)]


def test_every_tool_in_every_group_passes_strict_mode(tmp_path: Path) -> None:
    tools = _every_tool(tmp_path)
    assert {t.name for t in tools} == {"calculator", "now", "days_between", "add_days", "read_file", "list_files",
                                       "find_files", "write_file", "shell", "run_python", "run_tests", "fetch"}
    for t in tools:
        params = t.spec.parameters
        assert_strict(params)
        assert sdk_strict(params) == params, t.name
        assert t.spec.description, f"{t.name} has no description"
        for name, prop in params["properties"].items():
            assert prop.get("description") or any(o.get("description") for o in prop.get("anyOf", [])), \
                f"{t.name}.{name} has no description"


def test_find_files_optional_arguments_are_nullable_in_the_schema(tmp_path: Path) -> None:
    params = by_name(files(tmp_path))["find_files"].spec.parameters
    assert params["required"] == ["pattern", "containing", "path"]
    assert {"type": "null"} in params["properties"]["containing"]["anyOf"]


# -- calculator ---------------------------------------------------------------------------------


async def test_calculator_computes() -> None:
    assert await calculator.call({"expression": "2 ** 10 + sqrt(16) * (3 - 1)"}) == "1032"
    assert await calculator.call('{"expression": "7 / 2"}') == "3.5"
    # `^` is a power, as models write it (the 1.5B's "2^10 - 24"), with the precedence of `**`
    assert await calculator.call({"expression": "2^10 - 24"}) == "1000"
    assert await calculator.call({"expression": "-2^2 + 3^2^2"}) == "77"


@pytest.mark.parametrize("expression, why", [
    ("__import__('os')", "is not allowed"),
    ("().__class__", "is not allowed"),
    ("2 ** 100000", "exponent 100000 is too large"),
    ("9 ** 9 ** 9", "too large"),
    ("1 / 0", "division by zero"),
])
async def test_calculator_refusals_are_value_errors(expression: str, why: str) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match=re.escape(why)):
        await calculator.call({"expression": expression})
    assert time.monotonic() - started < 2


async def test_calculator_refusals_are_observations_in_a_run() -> None:
    model = ScriptedModel([
        [call("calculator", expression="__import__('os').system('touch x')"),
         call("calculator", expression="2**99999")],
        call("finish", answer="refused"),
    ])
    result = await Agent("calc", tools=[calculator], model=model).run("try")
    assert result.ok
    bad_import, huge = tool_steps(result)[:2]
    assert bad_import.error == "raised" and huge.error == "raised"
    assert bad_import.observation.startswith("calculator raised ValueError: ") and "is not allowed" in \
        bad_import.observation
    assert "exponent 99999 is too large (limit 1000)" in huge.observation


async def test_calculator_function_overflow_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too large"):
        await calculator.call({"expression": "exp(1000)"})
