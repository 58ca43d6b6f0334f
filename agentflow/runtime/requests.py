"""What a run asks a person, and what comes back: the records of approvals, questions and plan reviews.

Kept apart from `human.py` (which asks) so the step runner, which waits for the replies, needs
nothing above it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from ..core.errors import AgentflowError
from ..core.events import Event

HumanKind = Literal["approval", "question", "plan"]


class HumanReply(BaseModel):
    """`approved` answers an approval (and accepts or refuses a plan), `answer` a question,
    `plan` replaces a plan under review; `reason` reaches the model with a refusal."""

    approved: bool | None = None
    answer: str | None = None
    reason: str | None = None
    plan: dict[str, Any] | None = None
    timed_out: bool = False


class HumanRequest(BaseModel):
    """What a run is waiting for. `default` is the reply when no one answers within `timeout`
    seconds (or at once, in a run that is not durable)."""

    kind: HumanKind
    question: str
    agent: str = ""
    tool: str | None = None
    arguments: str | None = None
    plan: dict[str, Any] | None = None
    timeout: float | None = None
    default: HumanReply | None = None


class HumanAsked(Event):
    """A durable run began to wait for a person; `name` identifies the request in the run (reply to it
    with `DurableRun.reply(..., name)` or `POST /runs/{id}/replies/{name}`)."""

    kind: Literal["human_request"] = "human_request"
    name: str
    request: HumanRequest
    asked_at: float


class HumanAnswered(Event):
    """The wait `name` ended: a person replied, or its timeout gave the default (`reply.timed_out`)."""

    kind: Literal["human_reply"] = "human_reply"
    name: str
    reply: HumanReply


class HumanNeeded(AgentflowError):
    """A run asked a human a question with no default, outside a durable run."""
