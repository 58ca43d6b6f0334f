"""Targets `agentflow mcp-serve` serves in the tests: an agent, and a workflow of one Python step."""

from __future__ import annotations

from typing import Any

from agentflow import Agent, FunctionModel, ToolCall
from agentflow.models.scripted import RequestInfo
from agentflow.workflow import Workflow, step


def reply(info: RequestInfo) -> Any:
    task = next(m.content or "" for m in info.messages if m.role == "user")
    if task == "give up":
        return "no"  # text, not a finish: the run ends without a result
    return ToolCall(id="f", name="finish", arguments=f'{{"answer": "echo: {task}"}}')


echo = Agent("echo", "Repeat the task.", model=FunctionModel(reply), description="Repeats the task it is given.",
             max_steps=1)


@step
async def double(n: int, label: str = "twice") -> dict[str, Any]:
    return {"label": label, "value": 2 * n}


doubler = Workflow(double, name="doubler")
