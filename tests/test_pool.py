"""`FlatPool`, the connection pool under both SDKs: reuse, limits, timeouts, cancellation, closing.

A small asyncio HTTP/1.1 server on 127.0.0.1 counts the connections it accepts and the requests
it is serving at once, so each test can check what went over the wire.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpcore2
import httpx2
import pytest

from agentflow import Message
from agentflow.models.anthropic import AnthropicModel
from agentflow.models.openai import OpenAIModel
from agentflow.models.transport.pool import FlatPool, with_flat_pool

COMPLETION = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()


class Server:
    """`/slow?s` answers after s seconds, `/close` answers with `Connection: close`, `/drop` hangs up
    after answering (keep-alive promised), `/big` sends 1 MB, anything else answers at once (a chat
    completion)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.closed = 0
        self.serving = 0
        self.most_serving = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> Server:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                length = next((int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length")), 0)
                await reader.readexactly(length)
                self.serving += 1
                self.most_serving = max(self.most_serving, self.serving)
                try:
                    if path.startswith("/slow"):
                        await asyncio.sleep(float(path.split("?")[1]))
                    body = b"x" * 1_000_000 if path == "/big" else COMPLETION
                    close = path == "/close"
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 + (b"Connection: close\r\n" if close else b"")
                                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    await writer.drain()
                finally:
                    self.serving -= 1
                if close or path == "/drop":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed += 1
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = await Server().start()
    yield s
    await s.stop()


def client(**limits: float | int | None) -> httpx2.AsyncClient:
    return with_flat_pool(httpx2.AsyncClient(limits=httpx2.Limits(**limits), trust_env=False))  # type: ignore[arg-type]


def pool_of(c: httpx2.AsyncClient) -> FlatPool:
    pool = c._transport._pool  # type: ignore[attr-defined]  # pyright: ignore[reportPrivateUsage,reportAttributeAccessIssue,reportUnknownMemberType,reportUnknownVariableType]
    assert isinstance(pool, FlatPool)
    return pool


async def test_sequential_requests_reuse_one_connection(server: Server) -> None:
    async with client() as c:
        for _ in range(5):
            assert (await c.get(server.url + "/")).status_code == 200
        assert server.accepted == 1
        assert len(pool_of(c).connections) == 1


async def test_requests_beyond_max_connections_wait_for_a_free_one(server: Server) -> None:
    async with client(max_connections=3) as c:
        replies = await asyncio.gather(*[c.get(server.url + "/slow?0.05") for _ in range(10)])
    assert [r.status_code for r in replies] == [200] * 10
    assert server.most_serving == 3
    assert server.accepted == 3


async def test_idle_connections_beyond_keepalive_are_closed(server: Server) -> None:
    async with client(max_connections=10, max_keepalive_connections=2) as c:
        await asyncio.gather(*[c.get(server.url + "/slow?0.05") for _ in range(5)])
        assert len(pool_of(c).connections) == 2
        await asyncio.sleep(0.05)
        assert server.closed == 3


async def test_a_lapsed_idle_connection_is_closed_when_another_comes_back(server: Server) -> None:
    pool = FlatPool(max_connections=10, keepalive_expiry=0.3)
    await asyncio.gather(pool.request("GET", server.url + "/"), pool.request("GET", server.url + "/slow?0.25"))
    await asyncio.sleep(0.15)  # the first connection idled 0.4 s (lapsed), the second 0.15 s
    await pool.request("GET", server.url + "/")  # on the second; coming back, it finds the first lapsed
    assert len(pool.connections) == 1
    await asyncio.sleep(0.05)
    assert (server.accepted, server.closed) == (2, 1)
    await pool.aclose()


async def test_a_full_pool_times_out_with_httpx_pool_timeout(server: Server) -> None:
    async with client(max_connections=1) as c:
        slow = asyncio.create_task(c.get(server.url + "/slow?0.5"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx2.PoolTimeout):
            await c.get(server.url + "/", timeout=httpx2.Timeout(5, pool=0.05))
        assert (await slow).status_code == 200
        assert (await c.get(server.url + "/")).status_code == 200  # the slot came back


async def test_a_cancelled_request_gives_its_slot_back(server: Server) -> None:
    async with client(max_connections=1) as c:
        slow = asyncio.create_task(c.get(server.url + "/slow?5"))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        reply = await asyncio.wait_for(c.get(server.url + "/"), 2)
        assert reply.status_code == 200
        assert server.accepted == 2  # the cancelled request's socket was not reused


async def test_a_body_left_unread_closes_its_connection(server: Server) -> None:
    async with client(max_connections=1) as c:
        async with c.stream("GET", server.url + "/big") as response:
            assert response.status_code == 200
            async for _ in response.aiter_bytes():
                break
        assert (await c.get(server.url + "/")).status_code == 200
        assert server.accepted == 2


@pytest.mark.parametrize("path", ["/close", "/drop"])
async def test_a_connection_the_server_closed_is_not_reused(server: Server, path: str) -> None:
    async with client() as c:
        assert (await c.get(server.url + path)).status_code == 200
        await asyncio.sleep(0.05)
        assert (await c.get(server.url + "/")).status_code == 200
        assert server.accepted == 2


async def test_a_new_origin_evicts_an_idle_connection_when_the_pool_is_full(server: Server) -> None:
    other = await Server().start()
    try:
        async with client(max_connections=1) as c:
            assert (await c.get(server.url + "/")).status_code == 200
            assert (await c.get(other.url + "/")).status_code == 200
            await asyncio.sleep(0.05)
            assert server.closed == 1
            assert len(pool_of(c).connections) == 1
    finally:
        await other.stop()


async def test_a_proxy_keeps_httpcores_pool() -> None:
    async with with_flat_pool(httpx2.AsyncClient(proxy="http://127.0.0.1:9")) as c:
        proxied = c._transport_for_url(httpx2.URL("https://api.openai.com/v1"))  # pyright: ignore[reportPrivateUsage]
        assert type(proxied._pool) is httpcore2.AsyncHTTPProxy  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue,reportUnknownMemberType]


async def test_both_sdk_models_send_over_the_flat_pool(server: Server) -> None:
    openai_model = OpenAIModel("m", base_url=server.url + "/v1", api_key="k")
    for _ in range(3):
        reply = await openai_model.request([Message.user("hi")])
        assert reply.message.content == "hi"
    assert server.accepted == 1
    anthropic_client = AnthropicModel("m", base_url=server.url, api_key="k")._clients.get()  # pyright: ignore[reportPrivateUsage]
    assert isinstance(anthropic_client._client._transport._pool, FlatPool)  # type: ignore[attr-defined]  # pyright: ignore[reportPrivateUsage,reportAttributeAccessIssue,reportUnknownMemberType]


async def test_when_httpx_internals_move_the_client_keeps_httpcores_pool_and_says_so_once(
        caplog: pytest.LogCaptureFixture) -> None:
    from agentflow.models.transport import pool as _pool

    _pool._fell_back.cache_clear()
    made = []
    for _ in range(2):
        client = httpx2.AsyncClient()
        transport = client._transport  # pyright: ignore[reportPrivateUsage]
        stock = transport._pool  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
        del stock._max_connections  # as if a release renamed it
        with caplog.at_level("WARNING", logger="agentflow.models"):
            assert with_flat_pool(client) is client
        assert transport._pool is stock  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
        made.append(client)
    warnings = [r for r in caplog.records if "httpx2's internals are not as expected" in r.getMessage()]
    assert len(warnings) == 1 and "_max_connections" in warnings[0].getMessage()
    for client in made:
        await client.aclose()


async def test_a_transport_of_the_callers_own_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    mock = httpx2.MockTransport(lambda request: httpx2.Response(200))
    with caplog.at_level("WARNING", logger="agentflow.models"):
        async with with_flat_pool(httpx2.AsyncClient(transport=mock)) as client:
            assert client._transport is mock  # pyright: ignore[reportPrivateUsage]
    assert not caplog.records
