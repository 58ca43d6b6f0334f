"""What a run leaves behind: typed step records and the `RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

from .limits import LimitReason
from .messages import Message, ModelResponse, ToolCall, Usage

T = TypeVar("T")

StopReason = Literal["finish", "error"] | LimitReason


class ModelStep(BaseModel):
    """One model call: what it replied and what it cost."""

    kind: Literal["model"] = "model"
    agent: str
    index: int
    response: ModelResponse


class ToolStep(BaseModel):
    """One tool call and the observation the model saw. `error` names what went wrong, if anything:
    `unknown_tool`, `invalid_arguments`, `raised`, `timeout`, `rejected` or `invalid_output`."""

    kind: Literal["tool"] = "tool"
    agent: str
    index: int
    call: ToolCall
    observation: str
    error: str | None = None


Step = ModelStep | ToolStep


@dataclass
class RunResult(Generic[T]):
    """The outcome of a run. `output` is the validated `finish` value, or None when the run
    stopped for another reason (`stop_reason`, explained in `detail`); the history and the
    usage are always complete."""

    output: T | None
    stop_reason: StopReason
    usage: Usage
    steps: list[Step] = field(default_factory=list[Step])
    messages: list[Message] = field(default_factory=list[Message])
    detail: str = ""
    agent: str = ""

    @property
    def ok(self) -> bool:
        return self.stop_reason == "finish"
