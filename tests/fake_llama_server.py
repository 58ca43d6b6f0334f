"""A stand-in for llama.cpp's `llama-server`: `python tests/fake_llama_server.py -m PATH --port P ...`.

Other flags are accepted and ignored. `$FAKE_LLAMA_MODE` picks the behaviour:
  ok        /health answers 503 (loading) for ~0.3 s, then 200; POST /v1/chat/completions answers
            a chat completion whose content is the JSON action `finish` with answer "391"
  port      prints llama-server's bind failure and exits 1
  oom       prints an allocation failure and exits 1
  badmodel  prints a model load failure and exits 1
  hang      starts but never answers /health
  amx       crashes with SIGSEGV while loading (as llama.cpp's AMX kernels where the kernel does not
            allow AMX) unless started with --no-repack; then as `ok`
Each start appends its pid as a line to `$FAKE_LLAMA_PIDFILE`; in `ok` mode each request body is
appended as a JSON line to `$FAKE_LLAMA_REQUESTS` (both when set).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACTION = {"thought": "", "tool": "finish", "arguments": {"answer": "391"}}
LOADING = 0.3  # seconds /health answers 503, as while a model loads


def completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(ACTION)}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
    }


def serve(host: str, port: int, model: str) -> None:
    started = time.monotonic()
    record = os.environ.get("FAKE_LLAMA_REQUESTS")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path != "/health":
                self._json(404, {"error": {"message": "not found"}})
            elif time.monotonic() - started < LOADING:
                self._json(503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
            else:
                self._json(200, {"status": "ok"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found"}})
                return
            if record:
                with lock, open(record, "a") as f:
                    f.write(json.dumps(body) + "\n")
            self._json(200, completion(model))

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"main: server is listening on http://{host}:{port} - starting the main loop", flush=True)
    server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args, _ = parser.parse_known_args()
    if pidfile := os.environ.get("FAKE_LLAMA_PIDFILE"):
        with open(pidfile, "a") as f:
            f.write(f"{os.getpid()}\n")
    mode = os.environ.get("FAKE_LLAMA_MODE", "ok")
    print(f"llama_model_loader: loading model from {args.model}", flush=True)
    if mode == "port":
        print(f"start: couldn't bind HTTP server socket, hostname: {args.host}, port: {args.port}", flush=True)
        print("bind: address already in use", flush=True)
        return 1
    if mode == "oom":
        print("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 1117320768", flush=True)
        return 1
    if mode == "badmodel":
        print(f"main: failed to load model '{args.model}'", flush=True)
        return 1
    if mode == "hang":
        while True:
            time.sleep(60)
    if mode == "amx" and "--no-repack" not in sys.argv:
        os.kill(os.getpid(), signal.SIGSEGV)
    serve(args.host, args.port, os.path.basename(args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
