"""A scripted HTTP server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats.

Tests queue replies (JSON bodies, SSE streams, error statuses with headers, delays) and then
drive the real `openai` / `anthropic` SDKs at it; every request is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None                       # JSON body
    sse: list[tuple[str | None, Any]] | None = None  # (event name, data) pairs; data "[DONE]" is sent raw
    headers: dict[str, str] = field(default_factory=dict[str, str])
    delay: float = 0.0                     # seconds before answering
    raw: bytes | None = None               # the body as is (e.g. not JSON)
    cut_after: int | None = None           # close the connection after this many SSE events


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class LLMServer:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    server.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                    json.loads(raw or b"{}")))
                    reply = server.replies.pop(0) if server.replies else Reply(
                        500, {"error": {"message": "no scripted reply left", "type": "server_error"}})
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.sse is not None:
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for n, (event, data) in enumerate(reply.sse):
                        if n == reply.cut_after:
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        text = data if isinstance(data, str) else json.dumps(data)
                        frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
                        chunk = frame.encode()
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                payload = reply.raw if reply.raw is not None else \
                    json.dumps(reply.body if reply.body is not None else {}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- reply builders ------------------------------------------------------------------------------


def openai_reply(content: str | None = None, tool_calls: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
                 *, prompt_tokens: int = 10, completion_tokens: int = 5, cached: int = 0) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                                 for i, n, a in tool_calls]
    return Reply(body={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens,
                  "prompt_tokens_details": {"cached_tokens": cached}},
    })


def anthropic_reply(text: str | None = None, tool_uses: list[tuple[str, str, dict[str, Any]]] = (),  # type: ignore[assignment]
                    *, input_tokens: int = 10, output_tokens: int = 5, cache_read: int = 0) -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in tool_uses]
    return Reply(body={
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": content,
        "stop_reason": "tool_use" if tool_uses else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": 0},
    })


def error_reply(status: int, message: str = "error", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "error"}}, headers=headers or {})
