"""A connection pool for the SDKs' httpx transport whose cost per request does not grow with load.

httpcore's pool walks every queued request and open connection each time a request starts or
ends; with hundreds of requests in flight that walk was most of a model call's CPU. This pool
keeps idle connections in a stack per origin and bounds requests in flight with a semaphore, so
taking and returning a connection costs the same at any load. Connecting, HTTP/1.1, TLS,
timeouts and errors stay httpcore's own; only the bookkeeping is replaced, and only on the
transport that talks to the API directly (a proxy's transport keeps httpcore's pool).

We use it instead of the SDKs' aiohttp transport, which is as fast but costs ~9 MB of memory
for importing aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio
import httpcore2
import httpx2
from httpcore2 import AsyncConnectionInterface as Connection
from httpcore2 import ConnectionNotAvailable

Key = tuple[bytes, bytes, int]

log = logging.getLogger("agentflow.models")


class FlatPool(httpcore2.AsyncConnectionPool):
    """`httpcore2.AsyncConnectionPool`'s limits at O(1) per request (HTTP/1.1, one event loop).

    At most `max_connections` requests are in flight and sockets open; up to
    `max_keepalive_connections` idle sockets are kept, the most recently used reused first."""

    def __init__(self, *, max_connections: int | None = 10, max_keepalive_connections: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, max_keepalive_connections=max_keepalive_connections,
                         **kwargs)
        self._limit = max_connections or sys.maxsize
        self._keep = min(self._limit, sys.maxsize if max_keepalive_connections is None else max_keepalive_connections)
        self._idle: dict[Key, list[Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the loop

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        scheme = request.url.scheme
        if scheme not in (b"http", b"https"):
            raise httpcore2.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme.decode()}://'.")
        slots = self._slots = self._slots or asyncio.Semaphore(self._limit)
        if slots.locked():
            try:
                async with asyncio.timeout(request.extensions.get("timeout", {}).get("pool")):
                    await slots.acquire()
            except TimeoutError:
                raise httpcore2.PoolTimeout("no connection became free within the pool timeout") from None
        else:
            await slots.acquire()
        try:
            key = _key(request.url.origin)
            while True:
                connection = await self._take(key, request.url.origin)
                try:
                    response = await connection.handle_async_request(request)
                except ConnectionNotAvailable:  # it failed while idle: take another
                    await self._close(connection)
                    continue
                except BaseException:
                    await self._close(connection)
                    raise
                assert isinstance(response.stream, AsyncIterable)
                return httpcore2.Response(status=response.status, headers=response.headers,
                                          content=_Body(response.stream, connection, key, self),
                                          extensions=response.extensions)
        except BaseException:
            slots.release()
            raise

    async def _take(self, key: Key, origin: httpcore2.Origin) -> Connection:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if not connection.has_expired():
                return connection
            await self._close(connection)
        if self._open >= self._limit:
            # Our slot is free, so some open socket is idle (for another origin): make room.
            await self._close(self._pop_spare())
        self._open += 1
        return self.create_connection(origin)

    def _pop_spare(self) -> Connection:
        """An idle connection to close, the least recently used of some origin's."""
        idle = next(stack for stack in self._idle.values() if stack)
        self._idle_count -= 1
        return idle.pop(0)

    def _give_back(self, connection: Connection, key: Key) -> Connection | None:
        """Take a connection back after its response; returns one that must now be closed."""
        assert self._slots is not None
        self._slots.release()
        if not connection.is_idle():  # closed, or the body was left unread
            self._open -= 1
            return None if connection.is_closed() else connection
        stack = self._idle.setdefault(key, [])
        stack.append(connection)
        self._idle_count += 1
        if self._idle_count > self._keep:
            self._open -= 1
            return self._pop_spare()
        if stack[0] is not connection and stack[0].has_expired():  # the least recently used one lapsed
            self._open -= 1
            self._idle_count -= 1
            return stack.pop(0)
        return None

    async def _close(self, connection: Connection) -> None:
        self._open -= 1
        with anyio.CancelScope(shield=True):
            await connection.aclose()

    @property
    def connections(self) -> list[Connection]:
        """The idle connections (those in use are held by their responses)."""
        return [c for stack in self._idle.values() for c in stack]

    async def aclose(self) -> None:
        for connection in self.connections:
            await self._close(connection)
        self._idle.clear()
        self._idle_count = 0


def _key(origin: httpcore2.Origin) -> Key:
    return origin.scheme, origin.host, origin.port


class _Body:
    """A response body; closing it gives its connection back to the pool."""

    def __init__(self, stream: AsyncIterable[bytes], connection: Connection, key: Key, pool: FlatPool) -> None:
        self._stream = stream
        self._connection: Connection | None = connection
        self._key = key
        self._pool = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with anyio.CancelScope(shield=True):
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue,reportUnknownMemberType]
            closing = self._pool._give_back(connection, self._key)  # pyright: ignore[reportPrivateUsage]
            if closing is not None:
                await closing.aclose()


def with_flat_pool(client: httpx2.AsyncClient) -> httpx2.AsyncClient:
    """`client` with its direct transport's pool replaced by a `FlatPool` of the same settings.

    Reads httpx's and httpcore's private attributes: if a release renames them, the client keeps
    httpcore's own pool (correct, only slower under load), and that is logged once."""
    transport: Any = client._transport  # pyright: ignore[reportPrivateUsage]
    if not isinstance(transport, httpx2.AsyncHTTPTransport):  # the caller's own transport: theirs to keep
        return client
    try:
        pool: Any = transport._pool  # pyright: ignore[reportPrivateUsage]
        if type(pool) is not httpcore2.AsyncConnectionPool or pool._http2:
            return client
        transport._pool = FlatPool(  # pyright: ignore[reportPrivateUsage]
            ssl_context=pool._ssl_context, max_connections=pool._max_connections,
            max_keepalive_connections=pool._max_keepalive_connections, keepalive_expiry=pool._keepalive_expiry,
            retries=pool._retries, local_address=pool._local_address, uds=pool._uds,
            network_backend=pool._network_backend, socket_options=pool._socket_options)
    except AttributeError as e:
        _fell_back(str(e))
    return client


@functools.cache  # process-wide on purpose: once per kind of change, not once per client
def _fell_back(reason: str) -> None:
    log.warning("agentflow: httpx2's internals are not as expected (%s): model clients keep httpcore's own "
                "connection pool (correct, slower under load). Fix: pin httpx2/httpcore2 to the versions in "
                "agentflow's pyproject.toml", reason)
