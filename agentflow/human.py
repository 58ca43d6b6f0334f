"""Asking a human: approvals of risky tool calls, questions, plan reviews.

A run never talks to a person directly; it asks its step runner to `wait` for a reply. In
memory there is no one to wait for, so the request's `default` is the reply (an approval is
refused, a question without a default fails). The durable runtime waits for real: the run
pauses in the database, for days if need be, until `run.approve()`, `run.answer()` or the
CLI sends a reply, or until `timeout` passes and `default` is taken.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from .errors import AgentflowError
from .events import Event
from .scope import current_scope
from .tool import Tool

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


async def ask(name: str, request: HumanRequest) -> HumanReply:
    """Ask through the step runner of the run this is called in (name: unique in the run)."""
    from .runner import DEFAULT_RUNNER

    scope = current_scope()
    runner = DEFAULT_RUNNER if scope is None else scope.runner
    return await runner.wait(name if scope is None else f"{scope.key}/{name}", request)


class AskHuman(Tool[str]):
    """The `ask_human` tool: the model asks a person a question and waits for the answer.
    It waits outside any journaled step, so it is not journaled as one (its wait is)."""

    journaled = False

    def __init__(self, *, timeout: float | None = None, default: str | None = None, name: str = "ask_human") -> None:
        async def ask_human(question: str) -> str:
            """Ask the human user a question and wait for the answer. Use it when only they can decide or know.

            Args:
                question: the question, complete enough to answer without context
            """
            fallback = None if default is None else HumanReply(answer=default)
            reply = await ask("ask", HumanRequest(kind="question", question=question, timeout=timeout,
                                                 default=fallback, agent=_agent()))
            return reply.answer or ("(no answer)" if reply.timed_out else "")

        super().__init__(ask_human, name=name)


def _agent() -> str:
    scope = current_scope()
    return "" if scope is None else scope.path


ask_human = AskHuman()
"""Offer it to an agent (`tools=[ask_human]`); `AskHuman(timeout=3600, default="...")` for a bounded wait."""
