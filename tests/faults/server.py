"""A model server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats and, at a seeded
rate, answers a request with a fault instead of a reply.

    python -m tests.faults.server SEED RATE HANG     # prints "PORT <n>", serves until killed

It runs in a process of its own, so that its threads never compete with the runs' event loop for
the GIL (a reply that is slow for that reason would look like a timeout). A request's fault is
chosen from (SEED, model name, the request's number for that model): the runs name their model
after themselves, so a run sees the same faults whatever else runs beside it. `GET /counts` gives,
per model name, the tokens of every reply the server delivered whole, and the faults it injected.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.faults.replies import Action, Request, honest

FAULTS = (
    "429-retry-after", "429", "500", "502", "503", "reset", "hang", "cut", "malformed", "no-choices",
    "unknown-tool", "bad-arguments", "bad-finish", "huge",
)
HUGE = 100_000  # characters of text in a "huge" reply


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.input: Counter[str] = Counter()
        self.output: Counter[str] = Counter()
        self.faults: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            return {m: {"requests": self.requests[m], "input": self.input[m], "output": self.output[m],
                        "faults": dict(self.faults[m])} for m in self.requests}


def choose(seed: int, rate: float, model: str, n: int) -> str | None:
    rng = random.Random(f"{seed}/{model}/{n}")
    return rng.choice(FAULTS) if rng.random() < rate else None


def serve(seed: int, rate: float, hang: float) -> ThreadingHTTPServer:
    counts = Counts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._json(200, counts.as_json())

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            request = Request.read(self.path, body)
            with counts.lock:
                n = counts.requests[request.model]
                counts.requests[request.model] += 1
            fault = choose(seed, rate, request.model, n)
            if fault:
                with counts.lock:
                    counts.faults[request.model][fault] += 1
            usage = (len(raw) // 40 + 1, 0)
            try:
                self._answer(request, fault, usage)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client left (it timed out): nothing was delivered

        def _answer(self, request: Request, fault: str | None, usage: tuple[int, int]) -> None:
            if fault in ("429-retry-after", "429", "500", "502", "503"):
                status = int(fault[:3])
                headers = {"retry-after-ms": "20", "retry-after": "0.02"} if fault == "429-retry-after" else {}
                return self._json(status, {"error": {"message": f"injected {fault}", "type": "error"}}, headers)
            if fault == "reset":
                return self._reset()
            if fault == "hang":
                time.sleep(hang)
                return self._reset()
            if fault == "malformed":
                return self._raw(200, b'{"id": "x", "choices": [{"message": {"content": "trunc', "application/json")
            action = honest(request)
            if fault == "no-choices":
                action = None
            elif fault == "unknown-tool":
                action = Action(calls=[("no_such_tool", {"x": 1})])
            elif fault == "bad-arguments":
                action = Action(calls=[(action.calls[0][0] if action.calls else "finish", '{"oops": ')])
            elif fault == "bad-finish":
                action = Action(calls=[("finish", {"not_a_field": [1, 2]})])
            elif fault == "huge":
                action = Action(text="x" * HUGE)
            text = (action.text or "") if action else ""
            out = 3 + len(text) // 40 + sum(len(json.dumps(a)) for _, a in (action.calls if action else [])) // 40
            usage = (usage[0], out)
            if request.stream:
                delivered = self._stream(request, action, usage, cut=fault == "cut")
            elif fault == "cut":
                delivered = self._cut(request, action, usage)
            else:
                self._json(200, openai_body(request, action, usage) if request.wire == "openai"
                           else anthropic_body(request, action, usage))
                delivered = True
            if delivered:
                with counts.lock:
                    counts.input[request.model] += usage[0]
                    counts.output[request.model] += usage[1]

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(data).encode(), "application/json", headers)

        def _raw(self, status: int, payload: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def _reset(self) -> None:
            """Close with a TCP reset, no reply."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _cut(self, request: Request, action: Action | None, usage: tuple[int, int]) -> bool:
            """Half of a JSON body announced whole, then the connection closes."""
            body = json.dumps(openai_body(request, action, usage) if request.wire == "openai"
                              else anthropic_body(request, action, usage)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._reset()
            return False

        def _stream(self, request: Request, action: Action | None, usage: tuple[int, int], *, cut: bool) -> bool:
            events = openai_events(request, action, usage) if request.wire == "openai" \
                else anthropic_events(request, action, usage)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n, (event, data) in enumerate(events):
                if cut and n == len(events) // 2:
                    self._reset()
                    return False
                text = data if isinstance(data, str) else json.dumps(data)
                frame = ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()
                self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return True

        def finish(self) -> None:
            try:
                super().finish()
            except (OSError, ValueError):
                pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a reset connection is the point, not a problem

    return Server(("127.0.0.1", 0), Handler)


# -- the two wire formats ------------------------------------------------------------------------


def _arguments(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def openai_body(request: Request, action: Action | None, usage: tuple[int, int]) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    if action is not None:
        message: dict[str, Any] = {"role": "assistant", "content": action.text}
        if action.calls:
            message["tool_calls"] = [{"id": f"call_{i}", "type": "function",
                                      "function": {"name": name, "arguments": _arguments(args)}}
                                     for i, (name, args) in enumerate(action.calls)]
        choices = [{"index": 0, "message": message, "finish_reason": "tool_calls" if action.calls else "stop"}]
    return {"id": "chatcmpl-chaos", "object": "chat.completion", "created": 0, "model": request.model,
            "choices": choices, "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                          "total_tokens": sum(usage)}}


def anthropic_body(request: Request, action: Action | None, usage: tuple[int, int]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if action is not None:
        if action.text:
            content.append({"type": "text", "text": action.text})
        for i, (name, args) in enumerate(action.calls):
            content.append({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args})
    stop = "tool_use" if action is not None and action.calls else "end_turn"
    return {"id": "msg_chaos", "type": "message", "role": "assistant", "model": request.model, "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


Events = list[tuple[str | None, Any]]


def openai_events(request: Request, action: Action | None, usage: tuple[int, int]) -> Events:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        return None, {"id": "chatcmpl-chaos", "object": "chat.completion.chunk", "created": 0,
                      "model": request.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events: Events = [chunk({"role": "assistant", "content": ""})]
    if action is not None:
        text = action.text or ""
        for i in range(0, len(text), 4000):
            events.append(chunk({"content": text[i:i + 4000]}))
        for i, (name, args) in enumerate(action.calls):
            events.append(chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                                 "function": {"name": name, "arguments": ""}}]}))
            encoded = _arguments(args)
            for j in range(0, len(encoded), 16):
                events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": encoded[j:j + 16]}}]}))
        events.append(chunk({}, "tool_calls" if action.calls else "stop"))
    events.append((None, {"id": "chatcmpl-chaos", "object": "chat.completion.chunk", "created": 0,
                          "model": request.model, "choices": [],
                          "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                    "total_tokens": sum(usage)}}))
    events.append((None, "[DONE]"))
    return events


def anthropic_events(request: Request, action: Action | None, usage: tuple[int, int]) -> Events:
    events: Events = [("message_start", {"type": "message_start", "message": {
        "id": "msg_chaos", "type": "message", "role": "assistant", "model": request.model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": usage[0], "output_tokens": 1}}})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if action is not None:
        if action.text:
            text = action.text
            blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": text[i:i + 4000]}
                                                           for i in range(0, len(text), 4000)]))
        for i, (name, args) in enumerate(action.calls):
            encoded = _arguments(args)
            blocks.append(({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}},
                           [{"type": "input_json_delta", "partial_json": encoded[j:j + 16]}
                            for j in range(0, len(encoded), 16)]))
    for index, (start, deltas) in enumerate(blocks):
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "tool_use" if action is not None and action.calls else "end_turn"
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": usage[1]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


if __name__ == "__main__":
    server = serve(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()
