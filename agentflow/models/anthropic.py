"""Anthropic Messages API. Structured output is a forced tool call, as Anthropic recommends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import anthropic
import httpx2
from anthropic import AsyncAnthropic

from ..core.messages import FinishReason, Message, ModelResponse, StreamEvent, TextDelta, ToolCall, ToolCallDelta, Usage
from .base import ModelSettings, OutputSpec, ToolSpec
from .prices import Price
from .retry import RetryPolicy
from .sdk import SDKModel
from .transport.http import dumps
from .transport.pool import with_flat_pool

ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens on every request
_FINISH: dict[str, FinishReason] = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
                                    "max_tokens": "length", "refusal": "content_filter"}


class AnthropicModel(SDKModel):
    """A Claude model. `base_url`/`api_key` default to `ANTHROPIC_BASE_URL`/`ANTHROPIC_API_KEY`."""

    provider = "anthropic"
    default_url, url_env, key_env = ANTHROPIC_URL, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"
    other_servers = "a compatible server"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        settings: ModelSettings | None = None,
        prices: Price | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._connect(model, base_url, api_key, retry, settings, prices, lambda key, url: AsyncAnthropic(
            api_key=key, base_url=url, timeout=timeout, max_retries=0, default_headers=headers,
            http_client=with_flat_pool(anthropic.DefaultAsyncHttpxClient())))

    async def request(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        content = dumps(self._body(messages, tools, output, self.settings.merged(settings), stream=False))

        send = partial(self._clients.get().post, "/v1/messages", cast_to=httpx2.Response, content=content,
                       options={"headers": self._headers})
        data = await self._post(send)
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in data.get("content") or ():
            if block.get("type") == "text":
                text.append(block.get("text", ""))
            elif block.get("type") == "tool_use":
                calls.append(ToolCall(id=block["id"], name=block["name"],
                                      arguments=json.dumps(block.get("input") or {}, ensure_ascii=False)))
        return self._response(text, calls, data.get("stop_reason"), data.get("usage") or {}, output,
                              data.get("model") or "")

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[StreamEvent]:
        content = dumps(self._body(messages, tools, output, self.settings.merged(settings), stream=True))

        send = partial(self._clients.get().post, "/v1/messages", cast_to=object, content=content,
                       options={"headers": self._headers}, stream=True, stream_cls=anthropic.AsyncStream[object])
        text: list[str] = []
        blocks: dict[int, dict[str, str]] = {}
        usage: dict[str, Any] = {}
        stop: str | None = None
        model = ""
        async for event in self._events(send):
            kind = event.get("type")
            if kind == "message_start":
                message = event.get("message") or {}
                usage.update(message.get("usage") or {})
                model = message.get("model") or ""
            elif kind == "content_block_start":
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use":
                    index = event.get("index", 0)
                    blocks[index] = {"id": block["id"], "name": block["name"], "arguments": ""}
                    yield ToolCallDelta(index=index, id=block["id"], name=block["name"])
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta":
                    text.append(delta.get("text", ""))
                    yield TextDelta(text=delta.get("text", ""))
                elif delta.get("type") == "input_json_delta":
                    index = event.get("index", 0)
                    blocks[index]["arguments"] += delta.get("partial_json", "")
                    yield ToolCallDelta(index=index, arguments=delta.get("partial_json", ""))
            elif kind == "message_delta":
                stop = (event.get("delta") or {}).get("stop_reason") or stop
                usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        calls = [ToolCall(id=b["id"], name=b["name"], arguments=b["arguments"] or "{}")
                 for _, b in sorted(blocks.items())]
        yield self._response(text, calls, stop, usage, output, model)

    # -- wire format ----------------------------------------------------------------------------

    def _body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output: OutputSpec | None,
        settings: ModelSettings,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        system = "\n\n".join(m.content or "" for m in messages if m.role == "system")
        body: dict[str, Any] = {"model": self.model_name, "max_tokens": settings.max_tokens or DEFAULT_MAX_TOKENS}
        if system:
            body["system"] = system
        body["messages"] = wire_messages(messages)
        wire_tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
        choice = settings.tool_choice
        if output is not None:
            wire_tools.append({"name": output.name, "description": output.description or "Give the answer.",
                               "input_schema": output.schema_})
            choice = output.name
        if wire_tools:
            body["tools"] = wire_tools
            if choice is not None:
                body["tool_choice"] = ({"type": "any"} if choice == "required" else
                                       {"type": choice} if choice in ("auto", "none") else
                                       {"type": "tool", "name": choice})
            if settings.parallel_tool_calls is False:
                body.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
        for key in ("temperature", "top_p"):
            value = getattr(settings, key)
            if value is not None:
                body[key] = value
        if settings.stop:
            body["stop_sequences"] = settings.stop
        if stream:
            body["stream"] = True
        if settings.extra_body:
            body.update(settings.extra_body)
        return body

    def _response(self, text: list[str], calls: list[ToolCall], stop: str | None, raw_usage: dict[str, Any],
                  output: OutputSpec | None, model: str) -> ModelResponse:
        if output is not None:  # the forced output tool's input is the structured answer
            answer = next((c for c in calls if c.name == output.name), None)
            if answer is not None:
                text, calls, stop = [answer.arguments], [c for c in calls if c is not answer], "end_turn"
        read = raw_usage.get("cache_read_input_tokens") or 0
        write = raw_usage.get("cache_creation_input_tokens") or 0
        usage = Usage(requests=1, input_tokens=(raw_usage.get("input_tokens") or 0) + read + write,
                      output_tokens=raw_usage.get("output_tokens") or 0, cache_read_tokens=read,
                      cache_write_tokens=write)
        if self.price is not None:
            usage.cost = self.price.cost(usage)
        message = Message.assistant("".join(text) or None, calls)
        return ModelResponse(message=message, usage=usage, finish_reason=_FINISH.get(stop or "end_turn", "stop"),
                             model=model)


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Anthropic turns: tool results become user turns, and consecutive
    turns of one role merge (the API wants user and assistant to alternate)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            role, blocks = "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content or ""}]
        elif m.role == "assistant":
            role, blocks = "assistant", []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                try:
                    args = c.parsed_arguments()
                except ValueError:
                    args = {"_invalid_arguments": c.arguments}
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": args})
        else:
            role, blocks = "user", [{"type": "text", "text": m.content or ""}]
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out

