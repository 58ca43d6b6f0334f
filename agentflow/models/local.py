"""`local:NAME` models: a pulled catalog model (or any GGUF file) served by `llama-server`.

The server starts on first use, not when the model is made, so building agents stays instant;
what can be checked early (the file, the binary) is checked in the constructor, so a missing
piece fails where it is named. Constrained tool calling is on by default: the small models this
is for do not emit native tool calls (see OpenAIModel).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from ..core.messages import Message, ModelResponse, StreamEvent
from ..local.catalog import CATALOG, find, models_dir, pulled_path
from .base import ModelSettings, OutputSpec, ToolSpec
from .openai import OpenAIModel, ToolCalling
from .prices import Price
from .transport.http import ClientPerLoop

if TYPE_CHECKING:
    from ..local.server import LocalServer

FREE = Price(input=0.0, output=0.0)


def model_file(name: str) -> Path:
    """The GGUF file a `local:` name means: a catalog model that has been pulled, or a path."""
    if name.endswith(".gguf") or os.sep in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"no GGUF file at {path}. Fix: give the path of a .gguf file, or a catalog name "
                              f"({', '.join(CATALOG)})")
        return path
    path = pulled_path(find(name))  # find() names the catalog when `name` is not in it
    if path is None:
        raise ConfigError(f"the local model {name} has not been pulled (looked in {models_dir()}). "
                          f"Fix: agentflow models pull {name}")
    return path


class LocalModel(OpenAIModel):
    """A local model behind llama.cpp's OpenAI-compatible server.

    `base_url=` (or `AGENTFLOW_LOCAL_URL`) uses a server that is already running instead of
    starting one; then the name is only a label and no file is needed."""

    provider = "local"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        tool_calling: ToolCalling = "constrained",
        context: int = 8192,
        threads: int | None = None,
        start_timeout: float = 180.0,
        timeout: float = 600.0,
        settings: ModelSettings | None = None,
        **options: Any,
    ) -> None:
        url = base_url or os.environ.get("AGENTFLOW_LOCAL_URL")
        self.path: Path | None = None
        self._server: LocalServer | None = None
        if url is None:
            from ..local.server import server_command

            self.path = model_file(model)
            server_command()  # fail now, with the install command, rather than at the first request
        self._serve_options = {"context": context, "threads": threads, "start_timeout": start_timeout}
        # Greedy decoding: small models wander at the default temperature, and runs become repeatable.
        # A reply is capped (a runaway one would take minutes on a CPU), and a request may take long:
        # a busy 2-core machine generates a few tokens a second.
        super().__init__(model, base_url=url or "http://127.0.0.1:0/v1", api_key="no-key",
                         tool_calling=tool_calling, timeout=timeout,
                         settings=settings or ModelSettings(temperature=0.0, max_tokens=2048),
                         prices=options.pop("prices", FREE), **options)

    async def _ready(self) -> None:
        if self.path is None or (self._server is not None and self._server.alive()):
            return
        from ..local.server import serve

        # Shared by every agent and process on the machine (see local/lease.py), started at most once;
        # a server that died is reported by serve(), not silently replaced.
        self._server = await asyncio.to_thread(serve, self.path, **self._serve_options)  # type: ignore[arg-type]
        if self._server.url != self.base_url:  # the first server, or a new one after a crash (a new port)
            self.base_url = self._server.url  # read when a loop's client is made: clients made before are stale
            self._clients = ClientPerLoop(self._clients._factory)

    async def request(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                      output: OutputSpec | None = None, settings: ModelSettings | None = None) -> ModelResponse:
        await self._ready()
        return await super().request(messages, tools=tools, output=output, settings=settings)

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                     output: OutputSpec | None = None, settings: ModelSettings | None = None,
                     ) -> AsyncIterator[StreamEvent]:
        await self._ready()
        async for event in super().stream(messages, tools=tools, output=output, settings=settings):
            yield event
