"""The REST API's bodies: what clients send and what they get back (so `/openapi.json` is exact)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.messages import Usage
from .targets import ID_FIELD, Kind

Status = Literal["pending", "running", "waiting", "succeeded", "failed", "cancelled"]
STATUS: dict[str, Status] = {"queued": "pending", "running": "running", "waiting": "waiting", "done": "succeeded",
                             "failed": "failed", "cancelled": "cancelled"}  # the durable runtime's words -> the API's
DURABLE_STATUS = {v: k for k, v in STATUS.items()}
ENDED = ("succeeded", "failed", "cancelled")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


class Problem(BaseModel):
    """Every error: `error` is a stable code, `message` says what is wrong and how to fix it, `field`
    names the part of the request at fault (`input.person_name`), when one is."""

    error: str
    message: str
    field: str | None = None


class TargetInfo(BaseModel):
    name: str
    kind: Kind
    description: str
    input_schema: dict[str, Any] = Field(description="JSON schema of `input` in POST /runs")
    output_schema: dict[str, Any] = Field(description="JSON schema of a finished run's `output`")


class RunCreated(BaseModel):
    id: str
    target: str
    status: Status


class HumanRequestView(BaseModel):
    """A question the run waits on; answer it with POST /runs/{run}/replies/{id}."""

    id: str
    kind: Literal["approval", "question", "plan"]
    question: str
    agent: str = ""
    tool: str | None = None
    arguments: str | None = None
    plan: dict[str, Any] | None = None
    asked_at: datetime | None = None
    timeout: float | None = Field(default=None, description="seconds it waits before taking its default")


class RunBase(BaseModel):
    id: str
    target: str
    kind: Kind | None = Field(description="None when this server does not serve the run's target")
    status: Status
    input: Any = Field(description="the task (agents, supervisors) or the inputs (workflows)")
    session: str | None = Field(default=None, description="the session this run is a turn of")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RunSummary(RunBase):
    open_requests: int = Field(description="how many questions it waits on")


class RunView(RunBase):
    output: Any = Field(default=None, description="the typed result, as JSON, once the run succeeded")
    outputs: dict[str, Any] | None = Field(default=None, description="workflows: every finished task's output")
    stop_reason: str | None = Field(default=None, description="agents: finish, max_steps, ..., error")
    detail: str | None = None
    error: str | None = None
    usage: Usage
    requests: list[HumanRequestView] = Field(description="the open questions the run waits on")


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_offset: int | None = Field(description="pass as ?offset= for the next page; None on the last")


class Reply(Strict):
    """`{"approve": true|false, "reason"?: "..."}` answers an approval (and accepts or refuses a plan,
    optionally replaced by `plan`); `{"answer": "..."}` answers a question."""

    approve: bool | None = None
    reason: str | None = Field(default=None, max_length=10_000)
    answer: str | None = None
    plan: dict[str, Any] | None = Field(default=None, description="plan reviews: the plan to run instead")


class ReplySent(BaseModel):
    run: str
    request: str
    status: Literal["taken", "sent"] = Field(description="taken: the run has it; sent: stored until the run executes")


class Rerun(Strict):
    changes: dict[str, Any] = Field(default_factory=dict, description="task name -> its corrected output")
    inputs: dict[str, Any] = Field(default_factory=dict, description="run inputs to replace")
    id: str | None = ID_FIELD


class SessionCreate(Strict):
    target: str = Field(description="an agent or supervisor this server serves")
    id: str | None = ID_FIELD


class SessionInfo(BaseModel):
    id: str
    target: str
    created_at: datetime | None = None


class MessageIn(Strict):
    text: str = Field(min_length=1)


class TurnStarted(BaseModel):
    session: str
    turn: int
    run: str = Field(description="the turn's run id: GET /runs/{run}, /runs/{run}/events")
    status: Status


class TurnView(BaseModel):
    turn: int
    run: str
    status: Status
    text: str | None
    reply: Any = None
    stop_reason: str | None = None
    error: str | None = None


class SessionView(SessionInfo):
    turns: list[TurnView]
    messages: list[dict[str, Any]] = Field(description="the conversation the next turn continues")
