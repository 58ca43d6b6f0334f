"""Agents as tools: a task goes down to a task agent, its typed `finish` output comes back.

Context is engineered, not dumped: the task agent sees the task and the `context` its caller
chose to pass, never the caller's conversation. The `DelegationGuard` stops the peers' most
reported failure, a supervisor that hands out the same task forever.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import ConfigDict, Field, create_model

from ..core.errors import ConfigError
from ..core.tool import Tool, ToolError, to_observation
from ..runtime.guards import DelegationGuard
from ..runtime.scope import current_scope

if TYPE_CHECKING:
    from ..models.base import Model, ToolSpec
    from .loop import Agent

TASK_DOC = "The task, complete and self-contained: the agent sees nothing but this and the context."
CONTEXT_DOC = ("Results of other agents or facts from the user that the agent needs (it cannot see your "
               "conversation). Leave it out when you have none: never guess.")

CONTEXT = "\n\nContext:\n"  # between a delegated task and the context it was given


def without_context(spec: ToolSpec, model: Model) -> ToolSpec:
    """A delegation's spec for `model`. Grammar-constrained small models fill every field they are shown, so
    they invent a `context` before any agent has returned one: they get the task alone, and write facts into it."""
    if model.replies_in_text or "context" not in spec.parameters.get("properties", {}):
        return spec
    parameters = dict(spec.parameters)
    parameters["properties"] = {k: v for k, v in parameters["properties"].items() if k != "context"}
    parameters["required"] = [n for n in parameters.get("required", ()) if n != "context"]
    return spec.model_copy(update={"parameters": parameters})


class AgentTool(Tool[Any]):
    """A tool whose call runs `agent` on a task; its model and tool calls are steps of their own."""

    journaled = False

    def __init__(self, agent: Agent[Any], *, name: str | None = None, description: str | None = None,
                 context: type[Any] | None = str, share: float | None = None) -> None:
        self.agent = agent
        if share is not None and not 0 < share <= 1:
            raise ConfigError(f"agent {agent.name!r} as a tool: share={share!r} must be above 0 and at most 1 (the "
                              "fraction of the caller's remaining budget each delegation may spend)")
        self.share = share
        tool_name = name or re.sub(r"[^a-zA-Z0-9_-]", "_", agent.name)[:64]
        fields: dict[str, Any] = {"task": (Annotated[str, Field(description=TASK_DOC)], ...)}
        if context is not None:
            fields["context"] = (Annotated[context | None, Field(description=CONTEXT_DOC)], None)
        args = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        super().__init__(self.delegate, name=tool_name, args_model=args,
                         description=description or agent.description or f"Give a task to the {agent.name} agent.")

    def spec_for(self, model: Model) -> ToolSpec:
        return without_context(self.spec, model)

    async def delegate(self, task: str, context: Any = None) -> Any:
        scope = current_scope()
        guard = scope.guard if scope is not None and scope.guard is not None else DelegationGuard()
        key = guard.begin(self.agent.name, task, context)
        budget = None
        if scope is not None and self.share is not None:
            budget = scope.budget.child(scope.budget.share(self.share))
        message = task if context in (None, "") else f"{task}{CONTEXT}{to_observation(context)}"
        try:
            result = await self.agent.run(message, budget=budget)
        except BaseException:
            guard.end(key, None)
            raise
        guard.end(key, result.output if result.ok else None)
        if not result.ok:
            raise ToolError(f"{self.agent.name} stopped before finishing the task "
                            f"({result.stop_reason}: {result.detail}).")
        return result.output
