"""Test doubles users test their agents with, offline and deterministic, exactly as we test ours.

A reply may be given as text (`"hello"`), one tool call (`call("add", a=1, b=2)`), several tool
calls in one reply (a list of them), a `Message`, or a whole `ModelResponse`. Usage is counted
(about four characters per token) so budgets and roll-ups can be tested too.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.messages import Message, ModelResponse, StreamEvent, TextDelta, ToolCall, ToolCallDelta, Usage
from .base import Model, ModelSettings, OutputSpec, ToolSpec

Reply = str | ToolCall | list[ToolCall] | Message | ModelResponse


_ids = itertools.count(1)


def call(name: str, /, **arguments: Any) -> ToolCall:
    """A tool call for a scripted reply: `call("finish", answer="391")`."""
    return ToolCall(id=f"call_{next(_ids)}", name=name, arguments=json.dumps(arguments))


@dataclass
class RequestInfo:
    """What one request to a test model carried, kept for assertions."""

    messages: list[Message]
    tools: list[ToolSpec]
    output: OutputSpec | None
    settings: ModelSettings

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    @property
    def last(self) -> Message:
        return self.messages[-1]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def to_response(reply: Reply, messages: Sequence[Message], model: str) -> ModelResponse:
    """Any accepted reply form as a `ModelResponse` with estimated usage."""
    if isinstance(reply, ModelResponse):
        return reply
    if isinstance(reply, str):
        message = Message.assistant(reply)
    elif isinstance(reply, ToolCall):
        message = Message.assistant(None, (reply,))
    elif isinstance(reply, Message):
        message = reply
    else:
        message = Message.assistant(None, tuple(reply))
    prompt = sum(_tokens((m.content or "") + "".join(c.arguments for c in m.tool_calls)) for m in messages)
    out = _tokens((message.content or "") + "".join(c.name + c.arguments for c in message.tool_calls))
    return ModelResponse(
        message=message,
        usage=Usage(requests=1, input_tokens=prompt, output_tokens=out, cost=0.0),
        finish_reason="tool_calls" if message.tool_calls else "stop",
        model=model,
    )


class _TestModel(Model):
    provider = "test"

    def __init__(self, *, delay: float, name: str) -> None:
        self.delay = delay
        self.model_name = name
        self.requests: list[RequestInfo] = []

    async def _reply(self, info: RequestInfo) -> Reply:
        raise NotImplementedError

    async def request(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        info = RequestInfo(list(messages), list(tools), output, self.settings.merged(settings))
        self.requests.append(info)
        if self.delay:
            await asyncio.sleep(self.delay)
        return to_response(await self._reply(info), messages, self.model_name)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[StreamEvent]:
        response = await self.request(messages, tools=tools, output=output, settings=settings)
        text = response.message.content or ""
        for i, word in enumerate(text.split(" ")):
            yield TextDelta(text=word if i == 0 else " " + word)
        for i, c in enumerate(response.message.tool_calls):
            yield ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
        yield response


class ScriptedModel(_TestModel):
    """Returns `replies` in order; running out is an error that says how many were used."""

    def __init__(self, replies: Sequence[Reply], *, delay: float = 0.0, name: str = "scripted") -> None:
        super().__init__(delay=delay, name=name)
        self.replies = list(replies)
        self._next = 0

    async def _reply(self, info: RequestInfo) -> Reply:
        if self._next >= len(self.replies):
            raise AssertionError(
                f"ScriptedModel {self.model_name!r} ran out of replies: all {len(self.replies)} were used "
                f"and request {len(self.requests)} asked for another. Add replies to the script."
            )
        reply = self.replies[self._next]
        self._next += 1
        return reply

    @property
    def remaining(self) -> int:
        return len(self.replies) - self._next


ReplyFunction = Callable[[RequestInfo], Reply | Awaitable[Reply]]


class FunctionModel(_TestModel):
    """A Python function decides each reply from what the request carried (sync or async)."""

    def __init__(self, fn: ReplyFunction, *, delay: float = 0.0, name: str = "function") -> None:
        super().__init__(delay=delay, name=name)
        self.fn = fn

    async def _reply(self, info: RequestInfo) -> Reply:
        reply = self.fn(info)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply
