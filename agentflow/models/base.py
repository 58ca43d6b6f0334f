"""What every model adapter is: a request (and a stream) from neutral messages to a neutral reply."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from ..core.errors import ConfigError
from ..core.messages import Message, ModelResponse, StreamEvent


class ToolSpec(BaseModel):
    """A tool as a model sees it: a name, a description and a JSON schema for its arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any]


class OutputSpec(BaseModel):
    """A request for structured output: the reply's text must be JSON matching `schema`."""

    model_config = ConfigDict(frozen=True)

    name: str
    schema_: dict[str, Any]
    description: str = ""


ToolChoice = Literal["auto", "required", "none"] | str  # or the name of one tool


class ModelSettings(BaseModel):
    """Sampling and request options common to providers; `extra_body` passes anything else through."""

    model_config = ConfigDict(frozen=True)

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    extra_body: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _in_range(self) -> ModelSettings:
        t, p, n = self.temperature, self.top_p, self.max_tokens
        checks: list[tuple[str, float | None, bool, str]] = [
            ("temperature", t, t is None or 0 <= t <= 2, "from 0 to 2"),
            ("top_p", p, p is None or 0 < p <= 1, "above 0 and at most 1"),
            ("max_tokens", n, n is None or n >= 1, "at least 1")]
        bad = [f"{name}={value!r} (must be {want})" for name, value, ok, want in checks if not ok]
        if bad:
            raise ConfigError(f"ModelSettings: {'; '.join(bad)}. Fix: give a value in range, or None for the "
                              "model's default")
        return self

    def merged(self, other: ModelSettings | None) -> ModelSettings:
        """These settings with every field `other` sets laid over them."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_none=True))


class Model(ABC):
    """A chat model. Subclasses translate to one provider's wire format; nothing else may."""

    provider: str = ""
    model_name: str = ""
    settings: ModelSettings = ModelSettings()
    replies_in_text = True  # False when every reply must be a tool call (constrained decoding)

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model_name}"

    @abstractmethod
    async def request(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> ModelResponse:
        """One model call."""

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        output: OutputSpec | None = None,
        settings: ModelSettings | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Deltas as they arrive, then the complete `ModelResponse` as the last event.

        The default makes one ordinary request; adapters that can stream override it."""
        yield await self.request(messages, tools=tools, output=output, settings=settings)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
