"""What the OpenAI and Anthropic adapters share: the URL and key from the environment, one SDK
client per event loop on the flat connection pool, the default settings and price, and retries."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from ..core.errors import ConfigError
from .base import Model, ModelSettings
from .prices import Price, find_price
from .retry import MalformedReply, RetryPolicy, call_with_retries, delay_after, stream_cut
from .transport.http import ClientPerLoop

MakeClient = Callable[[str, str], Any]  # (api key, base URL) -> the SDK's async client


class SDKModel(Model):
    """A model behind a provider's SDK. A server other than the provider's own needs no key."""

    default_url: ClassVar[str]
    url_env: ClassVar[str]
    key_env: ClassVar[str]
    other_servers: ClassVar[str]  # what else base_url may point at, for the missing-key message

    def _connect(self, model: str, base_url: str | None, api_key: str | None, retry: RetryPolicy | None,
                 settings: ModelSettings | None, prices: Price | None, client: MakeClient) -> None:
        self.model_name = model
        self.base_url = (base_url or os.environ.get(self.url_env) or self.default_url).rstrip("/")
        key = api_key or os.environ.get(self.key_env)
        if not key:
            if self.base_url == self.default_url:
                raise ConfigError(f"no API key for {self.provider}:{model}. Fix: set {self.key_env}, or pass "
                                  f"api_key=, or point base_url= ({self.url_env}) at {self.other_servers}")
            key = "no-key"  # local servers (llama.cpp, vLLM, Ollama) ignore it
        self.settings = settings or ModelSettings()
        self.retry = retry or RetryPolicy()
        self.price = prices or find_price(self.name)
        self._clients = ClientPerLoop(lambda: client(key, self.base_url))
        self._secret = key
        self._headers = {"Content-Type": "application/json"}

    def _retrying(self, send: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        return call_with_retries(send, policy=self.retry, provider=self.provider, model=self.model_name,
                                 base_url=self.base_url, key_env=self.key_env, secret=self._secret)

    async def _post(self, send: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        """The JSON object a request answers with; a body that is not one is retried like a 5xx."""
        async def attempt() -> dict[str, Any]:
            content = (await send()).content
            try:
                data = json.loads(content)
            except ValueError as e:
                raise MalformedReply(f"{e}; it begins {content[:60]!r}") from None
            if not isinstance(data, dict):
                raise MalformedReply(f"it is a JSON {type(data).__name__}")
            return data  # type: ignore[return-value]

        return await self._retrying(attempt)

    async def _events(self, send: Callable[[], Awaitable[Any]]) -> AsyncIterator[Any]:
        """A stream's events. Opening it is retried, and so is a stream that breaks before its first
        event; one that breaks later is a `ModelError`, since what it sent has been shown."""
        for attempt in range(1, self.retry.attempts + 1):
            stream = await self._retrying(send)
            started = False
            try:
                async for event in stream:
                    started = True
                    yield event
                return
            except Exception as exc:
                if started or attempt == self.retry.attempts:
                    raise stream_cut(exc, provider=self.provider, model=self.model_name, base_url=self.base_url,
                                     secret=self._secret) from exc
                await asyncio.sleep(delay_after(self.retry, None, attempt))
