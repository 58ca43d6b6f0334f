"""A program the crash tests run in a subprocess and SIGKILL at chosen points.

    python -m tests.durable_app DB SCENARIO LOG

Every model call, tool call and workflow step appends `start X` and `end X` to LOG; with
SLOW=X in the environment, X sleeps after `start X` so the test can kill the process there.
On its first launch the program starts run `r-SCENARIO`; on later launches DBOS recovers it
and the program only waits for it. It prints `RESULT <output>` at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from agentflow import Agent, FunctionModel, Supervisor, ToolCall, durable, tool
from agentflow.models.scripted import RequestInfo
from agentflow.workflow import Workflow, step, task

DB, SCENARIO, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
SLOW = os.environ.get("SLOW", "")


def mark(what: str) -> None:
    with open(LOG, "a") as f:
        f.write(what + "\n")


async def effect(label: str) -> None:
    mark(f"start {label}")
    if label == SLOW:
        await asyncio.sleep(60)
    mark(f"end {label}")


def calls(info: RequestInfo) -> int:
    return sum(1 for m in info.messages if m.role == "assistant")


def scripted(name: str, script: list[Any]):
    """A model whose n-th reply is script[n]; each call is a side effect `model:NAME:n`."""

    async def reply(info: RequestInfo) -> Any:
        n = calls(info)
        label = f"model:{name}:{n}"
        mark(f"start {label}")
        if label == SLOW:
            await asyncio.sleep(60)
        answer = script[n](info) if callable(script[n]) else script[n]
        mark(f"end {label}")
        return answer

    return FunctionModel(reply, name=name)


def use(name: str, ident: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


@tool
async def note(text: str) -> str:
    """Write a note."""
    await effect(f"tool:{text}")
    return f"noted {text}"


worker = Agent(name="worker", tools=[note], model=scripted("worker", [
    [use("note", "w1", text="one")],
    [use("note", "w2", text="two"), use("note", "w3", text="three")],  # two calls at once
    lambda info: [use("finish", "w4", answer="worker done after " + str(sum(m.role == "tool" for m in info.messages)))],
]))

boss = Supervisor([worker], model=scripted("boss", [
    [use("worker", "b1", task="write three notes")],
    lambda info: [use("finish", "b2", answer="boss: " + (info.messages[-1].content or ""))],
]))


@tool(requires_approval=True)
async def deploy(version: str) -> str:
    """Deploy a version to production."""
    await effect(f"tool:deploy:{version}")
    return f"deployed {version}"


guarded = Agent(name="deployer", tools=[deploy], ends_with="text", model=scripted("deployer", [
    [use("deploy", "d1", version="1.2")],
    lambda info: info.messages[-1].content or "",
]))


@task("Say hello")
async def greet() -> str: ...


@step
async def slow_part() -> str:
    await effect("step:slow_part")
    return "slow"


@step
async def quick_part() -> str:
    await effect("step:quick_part")
    return "quick"


@step
def join(greet: str, slow_part: str, quick_part: str) -> str:
    return f"{greet}+{slow_part}+{quick_part}"


pipeline = Workflow((greet | slow_part | quick_part) >> join, name="pipeline",
                    model=scripted("greeter", ["hello"]))

TARGETS: dict[str, tuple[Any, dict[str, Any]]] = {
    "agent": (worker, {"task": "write three notes"}),
    "sub": (boss, {"task": "get the notes written"}),
    "parallel": (pipeline, {}),
    "approval": (guarded, {"task": "ship 1.2"}),
}


async def main() -> None:
    target, kwargs = TARGETS[SCENARIO]
    rt = durable.launch(f"sqlite:///{DB}", targets=[worker, boss, pipeline, guarded])
    run_id = f"r-{SCENARIO}"
    try:
        await rt.info(run_id)
        run = rt.get(run_id)
    except Exception:
        run = await rt.start(target, id=run_id, **kwargs)
    result = await run.result()
    print("RESULT", json.dumps(result.output), flush=True)
    rt.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
