"""The provider-neutral conversation: what every model adapter reads and writes.

Pydantic models, because these records cross boundaries (journals, REPL saves, the REST API);
adapters translate them to a provider's wire format and nothing else knows that format.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .record import Record

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(Record):
    """One call the model asked for. `arguments` is the JSON text exactly as the model wrote it,
    so an invalid one can be shown back to the model instead of crashing the run."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError with the reason when they are not a JSON object."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"arguments are not valid JSON ({e.msg} at position {e.pos})") from None
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value  # type: ignore[return-value]


class Message(Record):
    """One turn of the conversation. Tool results are `role="tool"` messages naming their call."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name on a tool message

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role="system", content=text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=text)

    @classmethod
    def assistant(cls, text: str | None = None, tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()) -> Message:
        return cls(role="assistant", content=text, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)


class Usage(Record):
    """Tokens and money. `input_tokens` counts every prompt token, cached ones included;
    `cost` is None when the model's price is unknown (it never pretends to be 0)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if self.cost is None and other.cost is None:
            cost = None
        else:
            cost = (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost=cost,
        )


FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "error"]


class ModelResponse(Record):
    """What one model call returned: the assistant message, its usage, and why it stopped."""

    message: Message
    usage: Usage = Field(default_factory=Usage)
    finish_reason: FinishReason = "stop"
    model: str = ""


class TextDelta(BaseModel):
    """A piece of assistant text, streamed as it is generated."""

    text: str


class ToolCallDelta(BaseModel):
    """A piece of a tool call being streamed: `index` ties the pieces of one call together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


StreamEvent = TextDelta | ToolCallDelta | ModelResponse


def close_open_calls(messages: list[Message]) -> list[Message]:
    """The conversation with a result for every tool call: a run stopped by a limit may leave calls
    unanswered, and providers refuse a history that continues from one."""
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    out: list[Message] = []
    for m in messages:
        out.append(m)
        for c in m.tool_calls:
            if c.id not in answered:
                out.append(Message.tool(c, "This call did not run: the run stopped before it."))
    return out
