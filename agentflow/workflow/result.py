"""What a workflow run reports: events as tasks start and end, a record per task execution, and
the `WorkflowResult` with every output by name and the usage per task and in total."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from ..core.errors import AgentflowError
from ..core.events import Event
from ..core.messages import Usage

T = TypeVar("T")
Status = Literal["done", "failed", "skipped", "reused", "edited"]


class TaskStarted(Event):
    """A task (or a route, loop or fan-out) began. `id` is unique in the run (`improve/2/review`,
    `research[3]`); `inputs` shows each input briefly."""

    kind: Literal["task_start"] = "task_start"
    id: str
    task: str
    unit: str
    inputs: dict[str, str] = {}


class TaskFinished(Event):
    """A task ended: `done`, `failed` (with `error`), `skipped` (a step before it ended the
    workflow), or `reused`/`edited` (a re-run took it from the previous run)."""

    kind: Literal["task_end"] = "task_end"
    id: str
    task: str
    unit: str
    status: Status
    output: Any = None
    usage: Usage = Usage()
    error: str | None = None
    detail: str = ""
    seconds: float = 0.0
    tries: int = 0


class TaskRecord(BaseModel):
    """One execution of a unit, kept in `WorkflowResult.records`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    task: str
    unit: str
    status: Status
    output: Any = None
    inputs: dict[str, str] = {}
    usage: Usage = Usage()
    error: str | None = None
    detail: str = ""
    seconds: float = 0.0
    tries: int = 0


@dataclass
class WorkflowResult(Generic[T]):
    """`output` is the last task's output (a dict by name when the workflow ends in several);
    `outputs` holds every task's (the last iteration's inside a loop, the chosen branch's in a
    route); `attempts[loop]` every iteration's; `usage` the total and `usage_by_task` the share
    of each task (a loop's or fan-out's includes its insides). `stopped_by` names the step whose
    state said `should_continue=False`."""

    workflow: str
    output: T
    outputs: dict[str, Any]
    inputs: dict[str, Any]
    usage: Usage
    usage_by_task: dict[str, Usage]
    records: list[TaskRecord]
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict[str, list[dict[str, Any]]])
    seconds: float = 0.0
    stopped_by: str | None = None
    error: str | None = None

    def __getitem__(self, name: str) -> Any:
        if name in self.outputs:
            return self.outputs[name]
        status = next((r.status for r in reversed(self.records) if r.task == name), None)
        why = f"it {status}" if status else "no task has that name"
        raise KeyError(f"no output for {name!r}: {why} (outputs: {', '.join(self.outputs) or 'none'})")

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def stop_reason(self) -> str:
        """`finish` (every task done, or a step said `should_continue=False`) or `error`."""
        return "finish" if self.error is None else "error"

    @property
    def detail(self) -> str:
        if self.error is not None:
            return self.error
        return f"stopped by {self.stopped_by}" if self.stopped_by else ""


class WorkflowError(AgentflowError):
    """A task failed: the message names it and shows its inputs; `result` holds everything that
    finished (nothing paid for is lost) and `task` the failing task's name."""

    def __init__(self, message: str, result: WorkflowResult[Any], task: str) -> None:
        super().__init__(message)
        self.result = result
        self.task = task
