"""What a run leaves behind: typed step records and the `RunResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from .events import Event
from .limits import LimitReason
from .messages import Message, ModelResponse, ToolCall, Usage

T = TypeVar("T")

StopReason = Literal["finish", "error", "loop", "cancelled"] | LimitReason


class ModelStep(Event):
    """One model call: what it replied and what it cost. `model` is the model asked (`provider:name`);
    `started` (epoch seconds) and `seconds` time the call, and are 0 when a durable run's journal
    replayed it instead (traces are drawn from these)."""

    kind: Literal["model"] = "model"
    index: int
    response: ModelResponse
    model: str = ""
    started: float = 0.0
    seconds: float = 0.0


class ModelFailed(Event):
    """A model call that raised (after the model's own retries); the run ends with the error. `error` is
    its type (or the limit that cut it short), `detail` its message."""

    kind: Literal["model_error"] = "model_error"
    index: int
    model: str
    error: str
    detail: str
    started: float
    seconds: float


class ToolStep(Event):
    """One tool call and the observation the model saw. `error` names what went wrong, if anything:
    `unknown_tool`, `invalid_arguments`, `raised`, `failed`, `timeout`, `rejected`, `invalid_output`,
    `ungrounded` (a `finish` naming what no tool returned), `repeated` (a task given again to an agent
    that had answered it) or `loop`. `started` (epoch seconds) and `seconds` time the call; a journaled
    call that a durable run replays keeps the times of the attempt that made it."""

    kind: Literal["tool"] = "tool"
    index: int
    call: ToolCall
    observation: str
    error: str | None = None
    started: float = 0.0
    seconds: float = 0.0


Step = ModelStep | ToolStep


@dataclass
class RunResult(Generic[T]):
    """The outcome of a run. `output` is the validated `finish` value, or None when the run
    stopped for another reason (`stop_reason`, explained in `detail`); the history and the
    usage are always complete. `usage` includes every sub-agent's; `children` holds the results
    of the sub-agent runs this run started, in the order they ended."""

    output: T | None
    stop_reason: StopReason
    usage: Usage
    steps: list[Step] = field(default_factory=list[Step])
    messages: list[Message] = field(default_factory=list[Message])
    detail: str = ""
    agent: str = ""
    children: list[RunResult[Any]] = field(default_factory=list["RunResult[Any]"])

    @property
    def ok(self) -> bool:
        return self.stop_reason == "finish"


@runtime_checkable
class Outcome(Protocol):
    """What every kind of run returns — `RunResult`, `WorkflowResult`, `ConversationResult` — has:
    the answer (`output`, None when there is none), whether the run reached it (`ok`), why it
    ended (`stop_reason`, explained by `detail`) and what it cost (`usage`)."""

    @property
    def output(self) -> Any: ...
    @property
    def ok(self) -> bool: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def usage(self) -> Usage: ...
