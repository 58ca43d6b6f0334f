"""What the two SDK adapters share: one SDK client per event loop, JSON bodies built by hand.

Requests go over the SDKs' default httpx transport with its connection pool swapped for
`_pool.FlatPool`: httpcore's own pool walks every request and connection it holds on every
request, which dominated CPU with hundreds of requests in flight.

The SDKs' typed `create()` walks every message against its TypedDicts on every call (about
7 ms of CPU per call in our benchmark). We build the JSON body ourselves and send it through the
SDK's low-level `post()`, which keeps its auth, base URL, headers and error types.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


async def _close_at_loop_end(client: _Closable) -> AsyncIterator[None]:
    # A suspended async generator is finalized by the loop's shutdown_asyncgens(), which
    # asyncio.run() calls before closing the loop: the one hook for "this loop is ending".
    try:
        yield
    finally:
        await client.close()


class ClientPerLoop(Generic[C]):
    """An SDK client for the running event loop, closed when that loop shuts down.

    An SDK client's connection pool belongs to the loop that first used it; sharing one client
    across `asyncio.run` calls (e.g. repeated `run_sync`) fails with 'Event loop is closed'."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[C, AsyncIterator[None]]] = \
            weakref.WeakKeyDictionary()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            client = self._factory()
            closer = _close_at_loop_end(client)
            loop.create_task(anext(closer))  # type: ignore[arg-type]
            entry = self._clients[loop] = (client, closer)
        return entry[0]
