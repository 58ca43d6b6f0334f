"""One connection per MCP server per process, held by a background event loop.

Why per process, not per run: the model must see a server's tools when the agent is made (they
are in its prompt), so they are listed before any run starts; a stdio server costs a process
start (half a second or more for a Python one) that every run would pay again; and the SDK's
connection is an anyio context that only the task that opened it may close. So one daemon
thread with its own event loop owns every connection: agents on any loop (`run_sync` makes one
per call, a durable worker has its own) share it, calls made at once go out at once, and it is
closed at exit. A server that dies mid-call is an error the caller turns into an observation;
the next call starts it again.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import shlex
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..core.errors import ConfigError

T = TypeVar("T")
Kind = Literal["stdio", "http", "sse"]
CONNECT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerSpec:
    """Where an MCP server is: `stdio:COMMAND ARGS`, `http(s)://HOST/PATH` (streamable HTTP) or
    `sse:http(s)://HOST/PATH` (the older SSE transport; a URL ending in `/sse` is taken as SSE too)."""

    kind: Kind
    target: tuple[str, ...]  # the command and its arguments, or the URL alone
    env: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @classmethod
    def parse(cls, spec: str, *, env: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
              cwd: str | None = None) -> ServerSpec:
        text = spec.strip()

        def made(kind: Kind, *target: str) -> ServerSpec:
            return cls(kind, target, tuple(sorted((env or {}).items())), tuple(sorted((headers or {}).items())), cwd)

        if text.startswith("stdio:"):
            argv = shlex.split(text.removeprefix("stdio:"))
            if not argv:
                raise ConfigError(f"MCP server {spec!r} names no command. Fix: write 'stdio:python -m my_server'")
            return made("stdio", *argv)
        if text.startswith("sse:"):
            url = text.removeprefix("sse:")
            _check_url(spec, url)
            return made("sse", url)
        if text.startswith(("http://", "https://")):
            return made("sse" if text.rstrip("/").endswith("/sse") else "http", text)
        raise ConfigError(f"MCP server {spec!r} is not one agentflow can reach. Fix: write 'stdio:COMMAND ARGS' "
                          "for a program, 'http://HOST:PORT/mcp' for streamable HTTP, or 'sse:http://HOST:PORT/sse'")

    @property
    def label(self) -> str:
        return " ".join(self.target) if self.kind == "stdio" else self.target[0]


def _check_url(spec: str, url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"MCP server {spec!r}: {url!r} is not an http(s) URL. Fix: write 'sse:http://HOST:PORT/sse'")


class _Loop:
    """The daemon thread whose event loop owns every MCP connection of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="agentflow-mcp", daemon=True).start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


_loop: _Loop | None = None
_lock = threading.Lock()
_connections: dict[ServerSpec, MCPConnection] = {}


def _background() -> _Loop:
    global _loop
    with _lock:
        if _loop is None:
            _loop = _Loop()
            for name in ("mcp.client.stdio", "mcp.client.sse", "mcp.client.streamable_http"):
                logging.getLogger(name).addFilter(_one_line)
        return _loop


def _one_line(record: logging.LogRecord) -> bool:
    """A server that went away is reported to the caller (and the model) by name; the SDK's own
    tracebacks of the same event would bury a terminal, so they are kept to their first line."""
    if record.exc_info:
        record.msg, record.args = f"%s: {_reason(record.exc_info[1] or Exception())}", (record.getMessage(),)
        record.exc_info, record.exc_text = None, None
    return True


class MCPServerGone(ConnectionError):
    """The server stopped or could not be reached; the message says which and what it last wrote."""


@dataclass(eq=False)
class MCPConnection:
    """The process's connection to one server: opened on first use, again after the server died."""

    spec: ServerSpec
    connect_timeout: float = CONNECT_TIMEOUT
    server_name: str = ""  # the name the server gave itself, once connected
    _client: Any = None
    _closing: asyncio.Event | None = None
    _held: concurrent.futures.Future[None] | None = None
    _errlog: Any = None
    _opening: threading.Lock = field(default_factory=threading.Lock)

    # -- from any thread or loop ----------------------------------------------------------------

    def list_tools(self) -> list[Any]:
        """The server's tools (`mcp.types.Tool`), every page; connects if need be."""
        self._ensure()
        return _background().submit(self._list()).result(self.connect_timeout)

    async def call(self, name: str, arguments: dict[str, Any], timeout: float | None) -> Any:
        """`tools/call` on the background loop; a `CallToolResult`. Raises `MCPServerGone` when the
        server is not there (and forgets the connection, so that the next call starts it again)."""
        await asyncio.to_thread(self._ensure)
        future = _background().submit(self._call(name, arguments, timeout))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def close(self) -> None:
        with self._opening:
            self._shut()

    # -- on the background loop -----------------------------------------------------------------

    def _ensure(self) -> None:
        with self._opening:
            if self._client is not None and self._held is not None and not self._held.done():
                return
            self._shut()
            ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
            self._held = _background().submit(self._hold(ready))
            try:
                self._client = ready.result(self.connect_timeout)
                info = self._client.server_info
                self.server_name = getattr(info, "name", "") or ""
            except concurrent.futures.TimeoutError:
                self._shut()
                raise MCPServerGone(f"the MCP server {self.spec.label} did not answer within "
                                    f"{self.connect_timeout:g} s{self._last_words()}") from None
            except Exception as e:
                words = self._last_words()
                self._shut()
                raise MCPServerGone(f"could not connect to the MCP server {self.spec.label}: "
                                    f"{_reason(e)}{words}") from None

    async def _hold(self, ready: concurrent.futures.Future[Any]) -> None:
        from mcp import Client

        self._closing = closing = asyncio.Event()
        try:
            async with Client(self._transport(), mode="legacy") as client:
                ready.set_result(client)
                await closing.wait()
        except BaseException as e:
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else MCPServerGone(str(e)))

    def _transport(self) -> Any:
        from mcp import StdioServerParameters, stdio_client
        from mcp.client.sse import sse_client

        spec = self.spec
        if spec.kind == "stdio":
            if self._errlog is not None:
                self._errlog.close()
            self._errlog = tempfile.TemporaryFile("w+", prefix="agentflow-mcp-")  # its stderr, for the last words
            params = StdioServerParameters(command=spec.target[0], args=list(spec.target[1:]),
                                           env=dict(spec.env) or None, cwd=spec.cwd)
            return stdio_client(params, errlog=self._errlog)
        if spec.kind == "sse":
            return sse_client(spec.target[0], headers=dict(spec.headers) or None)
        from mcp.client.streamable_http import streamable_http_client

        if not spec.headers:
            return streamable_http_client(spec.target[0])
        import httpx2  # the SDK's own HTTP client, which takes the headers

        return streamable_http_client(spec.target[0], http_client=httpx2.AsyncClient(headers=dict(spec.headers)))

    async def _list(self) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self._client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def _call(self, name: str, arguments: dict[str, Any], timeout: float | None) -> Any:
        client, held = self._client, self._held
        call = asyncio.ensure_future(client.call_tool(name, arguments, read_timeout_seconds=timeout))
        died = asyncio.wrap_future(held) if held is not None else None
        done, _ = await asyncio.wait([call, *([died] if died else [])], return_when=asyncio.FIRST_COMPLETED)
        if call in done and call.exception() is None:
            return call.result()
        if call not in done:  # the connection ended under the call
            call.cancel()
            error: BaseException = MCPServerGone("the connection closed")
        else:
            error = call.exception() or MCPServerGone("no reply")
        if _is_timeout(error):
            raise TimeoutError(f"{name} on the MCP server {self.spec.label} timed out after {timeout:g} s")
        if _is_protocol_error(error):  # the server answered with a JSON-RPC error: it is alive
            raise error
        self._client = None  # the next call connects again
        self.close_soon()
        raise MCPServerGone(f"the MCP server {self.spec.label} stopped during the call to {name} "
                            f"({_reason(error)}){self._last_words()}; it is started again at the next call")

    def close_soon(self) -> None:
        if self._closing is not None:
            self._closing.set()

    def _shut(self) -> None:
        held, closing = self._held, self._closing
        self._held = self._closing = self._client = None
        if held is None:
            return
        if closing is not None:
            _background().loop.call_soon_threadsafe(closing.set)
        try:
            held.result(10)
        except Exception:  # noqa: BLE001 (closing a connection that already failed)
            pass

    def _last_words(self) -> str:
        if self._errlog is None:
            return ""
        try:
            self._errlog.seek(0)
            text = self._errlog.read().strip()
        except (OSError, ValueError):
            return ""
        return f"; it wrote: {text[-600:]}" if text else ""


def _reason(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_reason(e) for e in error.exceptions)  # type: ignore[union-attr]
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _is_timeout(error: BaseException) -> bool:
    from mcp import MCPError

    return isinstance(error, TimeoutError) or (isinstance(error, MCPError) and "timed out" in str(error).lower())


def _is_protocol_error(error: BaseException) -> bool:
    from mcp import MCPError

    return isinstance(error, MCPError) and not isinstance(error, ConnectionError) and "closed" not in str(error).lower()


def connection_to(spec: ServerSpec) -> MCPConnection:
    """The process's one connection to `spec` (made, not yet opened, on first ask)."""
    with _lock:
        found = _connections.get(spec)
        if found is None:
            found = _connections[spec] = MCPConnection(spec)
        return found


def close_all() -> None:
    """Close every MCP connection of this process (stdio servers exit); done at exit too."""
    with _lock:
        held = list(_connections.values())
        _connections.clear()
    for c in held:
        c.close()


atexit.register(close_all)
