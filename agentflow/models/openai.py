"""OpenAI Chat Completions, and every OpenAI-compatible server (llama.cpp, vLLM, Ollama).

`tool_calling="constrained"` is for weak local models that do not emit native tool calls: the
request carries a `response_format` JSON schema that is the union of the available actions, so
the server's grammar makes every reply a valid action, which we turn back into a `ToolCall`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any, Literal

import httpx2
import openai
from openai import AsyncOpenAI

from ..core.errors import ConfigError
from ..core.messages import FinishReason, Message, ModelResponse, StreamEvent, TextDelta, ToolCall, ToolCallDelta, Usage
from ..core.schema import is_nullable
from .base import ModelSettings, OutputSpec, ToolSpec
from .prices import Price
from .retry import RetryPolicy
from .sdk import SDKModel
from .transport.http import dumps
from .transport.pool import with_flat_pool

ToolCalling = Literal["native", "constrained"]
OPENAI_URL = "https://api.openai.com/v1"
_FINISH: dict[str, FinishReason] = {"stop": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls",
                                    "length": "length", "content_filter": "content_filter"}


class OpenAIModel(SDKModel):
    """A model behind the OpenAI Chat Completions API.

    `base_url` and `api_key` default to `OPENAI_BASE_URL` and `OPENAI_API_KEY`, as in the SDK.
    A server other than OpenAI's needs no key."""

    provider = "openai"
    default_url, url_env, key_env = OPENAI_URL, "OPENAI_BASE_URL", "OPENAI_API_KEY"
    other_servers = "a local OpenAI-compatible server"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        tool_calling: ToolCalling = "native",
        strict: bool = False,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        settings: ModelSettings | None = None,
        prices: Price | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if tool_calling not in ("native", "constrained"):
            raise ConfigError(f"tool_calling={tool_calling!r} is not known; use 'native' or 'constrained'")
        self._connect(model, base_url, api_key, retry, settings, prices, lambda key, url: AsyncOpenAI(
            api_key=key, base_url=url, timeout=timeout, max_retries=0, default_headers=headers,
            http_client=with_flat_pool(openai.DefaultAsyncHttpxClient())))
        self.tool_calling: ToolCalling = tool_calling
        self.replies_in_text = tool_calling == "native"
        self.strict = strict

    # -- public API -----------------------------------------------------------------------------

    async def request(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        body = self._body(messages, tools, output, self.settings.merged(settings), stream=False)
        content = dumps(body)

        send = partial(self._clients.get().post, "/chat/completions", cast_to=httpx2.Response, content=content,
                       options={"headers": self._headers})
        data = await self._post(send)
        return self._parse(data, constrained=self._constrained(tools, output))

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[StreamEvent]:
        if self._constrained(tools, output):
            # The reply is one JSON action; its fragments mean nothing to a reader.
            yield await self.request(messages, tools=tools, output=output, settings=settings)
            return
        body = self._body(messages, tools, output, self.settings.merged(settings), stream=True)
        content = dumps(body)

        send = partial(self._clients.get().post, "/chat/completions", cast_to=object, content=content,
                       options={"headers": self._headers}, stream=True, stream_cls=openai.AsyncStream[object])
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        usage = Usage(requests=1)
        async for chunk in self._events(send):
            if chunk.get("usage"):
                usage = self._usage(chunk["usage"])
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(delta["content"])
                    yield TextDelta(text=delta["content"])
                for tc in delta.get("tool_calls") or ():
                    index = tc.get("index", 0)
                    fn = tc.get("function") or {}
                    slot = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = tc.get("id") or slot["id"]
                    slot["name"] += fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
                    yield ToolCallDelta(index=index, id=tc.get("id"), name=fn.get("name"),
                                        arguments=fn.get("arguments") or "")
                finish = choice.get("finish_reason") or finish
        tool_calls = tuple(ToolCall(id=c["id"] or _new_call_id(), name=c["name"], arguments=c["arguments"] or "{}")
                           for _, c in sorted(calls.items()))
        message = Message.assistant("".join(text) or None, tool_calls)
        yield ModelResponse(message=message, usage=usage, finish_reason=_FINISH.get(finish or "stop", "stop"),
                            model=self.model_name)

    # -- request --------------------------------------------------------------------------------

    def _constrained(self, tools: Sequence[ToolSpec], output: OutputSpec | None) -> bool:
        return self.tool_calling == "constrained" and bool(tools) and output is None

    def _body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        output: OutputSpec | None,
        settings: ModelSettings,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        constrained = self._constrained(tools, output)
        body: dict[str, Any] = {"model": self.model_name}
        if constrained:
            body["messages"] = constrained_messages(messages, tools)
            choice = settings.tool_choice  # a tool's name narrows the grammar; the prompt still lists all
            allowed = [t for t in tools if t.name == choice] or tools
            body["response_format"] = _json_schema_format("action", action_schema(allowed), strict=self.strict)
        else:
            body["messages"] = [_wire_message(m) for m in messages]
            if tools:
                body["tools"] = [self._wire_tool(t) for t in tools]
                choice = settings.tool_choice
                if choice is not None:
                    body["tool_choice"] = (choice if choice in ("auto", "required", "none")
                                           else {"type": "function", "function": {"name": choice}})
                if settings.parallel_tool_calls is not None:
                    body["parallel_tool_calls"] = settings.parallel_tool_calls
            if output is not None:
                body["response_format"] = _json_schema_format(output.name, output.schema_, strict=True)
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            body["max_completion_tokens" if self.base_url == OPENAI_URL else "max_tokens"] = settings.max_tokens
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.stop:
            body["stop"] = settings.stop
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if settings.extra_body:
            body.update(settings.extra_body)
        return body

    def _wire_tool(self, tool: ToolSpec) -> dict[str, Any]:
        fn: dict[str, Any] = {"name": tool.name}
        if tool.description:
            fn["description"] = tool.description
        if self.strict:
            fn["parameters"], fn["strict"] = tool.parameters, True
        else:  # outside strict mode `additionalProperties: false` is not enforced: don't pay tokens for it
            fn["parameters"] = _loose(tool.parameters)
        return {"type": "function", "function": fn}

    # -- response -------------------------------------------------------------------------------

    def _usage(self, raw: dict[str, Any] | None) -> Usage:
        raw = raw or {}
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        usage = Usage(requests=1, input_tokens=raw.get("prompt_tokens") or 0,
                      output_tokens=raw.get("completion_tokens") or 0, cache_read_tokens=cached)
        if self.price is not None:
            usage.cost = self.price.cost(usage)
        return usage

    def _parse(self, data: dict[str, Any], *, constrained: bool) -> ModelResponse:
        choice = (data.get("choices") or [{}])[0]
        raw = choice.get("message") or {}
        usage = self._usage(data.get("usage"))
        finish = _FINISH.get(choice.get("finish_reason") or "stop", "stop")
        if constrained:
            message = parse_action(raw.get("content") or "")
            finish = "tool_calls" if message.tool_calls else finish
        else:
            calls = tuple(
                ToolCall(id=tc.get("id") or _new_call_id(), name=tc["function"]["name"],
                         arguments=tc["function"].get("arguments") or "{}")
                for tc in raw.get("tool_calls") or ()
            )
            message = Message.assistant(raw.get("content"), calls)
        return ModelResponse(message=message, usage=usage, finish_reason=finish, model=data.get("model") or "")


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:16]


def _wire_message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content or ""}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    return out


def _loose(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("additionalProperties") is False:
        schema = {k: v for k, v in schema.items() if k != "additionalProperties"}
    return schema


def _json_schema_format(name: str, schema: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


# -- constrained tool calling ------------------------------------------------------------------


def action_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """One JSON schema whose instances are exactly the valid actions: a thought, a tool, its arguments.

    Each tool's `$defs` move to the root, where its `$ref`s point (renamed if two tools clash)."""
    defs: dict[str, Any] = {}
    actions: list[dict[str, Any]] = []
    for t in tools:
        parameters = dict(t.parameters)
        renames: dict[str, str] = {}
        for name, schema in parameters.pop("$defs", {}).items():
            new = name if defs.get(name, schema) == schema else f"{t.name}__{name}"
            defs[new], renames[name] = schema, new
        if renames:
            parameters = _renamed(parameters, renames)
            for new in renames.values():
                defs[new] = _renamed(defs[new], renames)
        properties = {"thought": {"type": "string"}, "tool": {"const": t.name}, "arguments": _optionals(parameters)}
        actions.append({"type": "object", "properties": properties, "required": ["thought", "tool", "arguments"],
                        "additionalProperties": False})
    return {"anyOf": actions, **({"$defs": defs} if defs else {})}


def _optionals(parameters: dict[str, Any]) -> dict[str, Any]:
    """Strict schemas require every argument, the optional ones as nullable; under a grammar that
    makes small models write something for each, so they invent values. Let them leave those out."""
    properties: dict[str, Any] = parameters.get("properties", {})
    required = [n for n in parameters.get("required", ()) if not is_nullable(properties.get(n, {}))]
    return {**parameters, "required": required}


def _renamed(schema: Any, renames: dict[str, str]) -> Any:
    if isinstance(schema, dict):
        out = {k: _renamed(v, renames) for k, v in schema.items()}  # type: ignore[misc]
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = "#/$defs/" + renames.get(ref[len("#/$defs/"):], ref[len("#/$defs/"):])
        return out
    if isinstance(schema, list):
        return [_renamed(v, renames) for v in schema]  # type: ignore[misc]
    return schema


def _describe(schema: dict[str, Any]) -> str:
    """A parameter schema as a short phrase; small models copy raw JSON schema as a value."""
    kinds = [v.get("type") or ("one of " + "/".join(map(str, v["enum"])) if "enum" in v else "value")
             for v in schema.get("anyOf", [schema]) if v.get("type") != "null"]
    text = " or ".join(str(k) for k in kinds) or "value"
    return f"{text}, {schema['description']}" if schema.get("description") else text


def _catalogue(tools: Sequence[ToolSpec]) -> str:
    lines = ["Act by replying with one JSON object: "
             '{"thought": "<your reasoning>", "tool": "<tool name>", "arguments": {...}}. '
             "After each action you see its result as an observation. Available tools:"]
    for t in tools:
        props: dict[str, Any] = t.parameters.get("properties", {})
        args = "; ".join(f"{name} ({'optional: ' if is_nullable(p) else ''}{_describe(p)})"
                         for name, p in props.items()) or "none"
        lines.append(f"- {t.name}: {t.description} Arguments: {args}")
    return "\n".join(lines)


_NEXT = ("If you now have the answer to every part of the task, call finish with the whole answer; otherwise "
         "take the next action.")


def constrained_messages(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """The conversation with tool calls as JSON actions and tool results as observations."""
    out: list[dict[str, Any]] = []
    catalogue = _catalogue(tools)
    if not messages or messages[0].role != "system":
        out.append({"role": "system", "content": catalogue})
    for m in messages:
        if m.role == "system" and not out:
            out.append({"role": "system", "content": f"{m.content}\n\n{catalogue}"})
        elif m.role == "assistant" and m.tool_calls:
            for c in m.tool_calls:
                try:
                    args: Any = json.loads(c.arguments)
                except json.JSONDecodeError:
                    args = c.arguments
                action = {"thought": m.content or "", "tool": c.name, "arguments": args}
                out.append({"role": "assistant", "content": json.dumps(action, ensure_ascii=False)})
        elif m.role == "tool":
            out.append({"role": "user", "content": f"Observation from {m.name}: {m.content}\n{_NEXT}"})
        else:
            out.append({"role": m.role, "content": m.content or ""})
    return out


def parse_action(text: str) -> Message:
    """A constrained reply back into an assistant message with one tool call."""
    try:
        action = json.loads(text)
    except json.JSONDecodeError:
        return Message.assistant(text)
    if not isinstance(action, dict) or not isinstance(action.get("tool"), str):
        return Message.assistant(text)
    args = action.get("arguments", {})
    call = ToolCall(id=_new_call_id(), name=action["tool"], arguments=json.dumps(args, ensure_ascii=False))
    thought = action.get("thought")
    return Message.assistant(thought if isinstance(thought, str) and thought else None, (call,))
