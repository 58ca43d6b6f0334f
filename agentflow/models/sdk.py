"""What the OpenAI and Anthropic adapters share: the URL and key from the environment, one SDK
client per event loop on the flat connection pool, the default settings and price, and retries."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..core.errors import ConfigError
from .base import Model, ModelSettings
from .prices import Price, find_price
from .retry import RetryPolicy, call_with_retries
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
