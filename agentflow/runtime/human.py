"""Asking a human: approvals of risky tool calls, questions, plan reviews.

A run never talks to a person directly; it asks its step runner to `wait` for a reply. In
memory there is no one to wait for, so the request's `default` is the reply (an approval is
refused, a question without a default fails). The durable runtime waits for real: the run
pauses in the database, for days if need be, until `run.approve()`, `run.answer()` or the
CLI sends a reply, or until `timeout` passes and `default` is taken.
"""

from __future__ import annotations

from ..core.tool import Tool
from .requests import HumanAnswered, HumanAsked, HumanKind, HumanNeeded, HumanReply, HumanRequest
from .runner import DEFAULT_RUNNER
from .scope import current_scope

__all__ = ["AskHuman", "HumanAnswered", "HumanAsked", "HumanKind", "HumanNeeded", "HumanReply", "HumanRequest",
           "ask", "ask_human"]

async def ask(name: str, request: HumanRequest) -> HumanReply:
    """Ask through the step runner of the run this is called in (name: unique in the run)."""
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
