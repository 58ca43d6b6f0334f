"""The program tests/test_chaos_crash.py SIGKILLs at random moments and launches again.

    python -m tests.crash_app DB_URL SCENARIO EFFECTS

A durable supervisor run (`supervisor`: two workers at once, one of them waiting for an approval
the program gives itself) or a durable workflow (`workflow`: a fan-out of a templated task, a
tool-using task and a Python step, then a join). Every model call, tool call and Python step is
a side effect: it writes `start LABEL` and `end LABEL` rows, with the run's id, to the SQLite file
EFFECTS, outside the journal, and its output carries LABEL so that the journal shows which ones
were recorded. The first launch starts run `r-SCENARIO`; later ones let DBOS recover it. Prints `READY` once the
runtime is up and `RESULT <output>` at the end. SCENARIO `worker` instead pulls submitted runs of
both kinds from the queue (one at a time) and approves whatever they wait for.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from dbos import DBOS
from pydantic import BaseModel

from agentflow import Agent, FunctionModel, Message, Supervisor, ToolCall, durable, tool
from agentflow.models.scripted import RequestInfo
from agentflow.workflow import Workflow, step, task

DB, SCENARIO, EFFECTS = sys.argv[1], sys.argv[2], sys.argv[3]
PAUSE = 0.03  # each side effect takes this long, so that kills land inside them too
_db = sqlite3.connect(EFFECTS, isolation_level=None, check_same_thread=False)
_db.execute("PRAGMA journal_mode=WAL")  # two workers write it at once
_db.execute("CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY, run TEXT, label TEXT, phase TEXT, "
            "pid INTEGER)")
_lock = threading.Lock()


def mark(label: str, phase: str) -> None:
    with _lock:
        _db.execute("INSERT INTO effects (run, label, phase, pid) VALUES (?, ?, ?, ?)",
                    (DBOS.workflow_id, label, phase, os.getpid()))


async def effect(label: str) -> str:
    mark(label, "start")
    await asyncio.sleep(PAUSE)
    mark(label, "end")
    return f"done {label}"


def use(name: str, ident: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


def scripted(name: str, script: list[Any]) -> FunctionModel:
    """The n-th reply is script[n]: calls, with the call's label as the reply's text."""

    async def reply(info: RequestInfo) -> Any:
        n = sum(1 for m in info.messages if m.role == "assistant")
        label = f"model:{name}:{n}"
        await effect(label)
        answer = script[n](info) if callable(script[n]) else script[n]
        if isinstance(answer, str):
            return f"{answer} ({label})"
        return Message.assistant(label, tuple(answer))

    return FunctionModel(reply, name=name)


@tool
async def note(text: str) -> str:
    """Write a note."""
    return await effect(f"tool:note:{text}")


@tool(requires_approval=True)
async def deploy(version: str) -> str:
    """Deploy a version."""
    return await effect(f"tool:deploy:{version}")


def last_tool(info: RequestInfo) -> str:
    return next(m.content or "" for m in reversed(info.messages) if m.role == "tool")


writer = Agent(name="writer", tools=[note], description="writes notes", model=scripted("writer", [
    [use("note", "w1", text="one"), use("note", "w2", text="two")],
    [use("note", "w3", text="three")],
    lambda info: [use("finish", "w4", answer="wrote " + str(sum(m.role == "tool" for m in info.messages)))],
]))
deployer = Agent(name="deployer", tools=[deploy], description="deploys", model=scripted("deployer", [
    [use("deploy", "d1", version="1.2")],
    lambda info: [use("finish", "d2", answer=last_tool(info))],
]))
boss = Supervisor([writer, deployer], model=scripted("boss", [
    [use("writer", "b1", task="write the notes"), use("deployer", "b2", task="deploy 1.2")],
    lambda info: [use("finish", "b3", answer=" | ".join(sorted(m.content or "" for m in info.messages
                                                                if m.role == "tool")))],
]))


class Report(BaseModel):
    notes: str


@task("Write a line about {topic}.")
async def draft(topic: str) -> str: ...


@task("Measure {topic} and write notes.", tools=[note], max_steps=4)
async def measure(topic: str) -> Report: ...


@step
async def check(topic: str) -> str:
    return await effect(f"step:check:{topic}")


@step
async def join(draft: str, measure: Report, check: str) -> str:
    done = await effect("step:join")
    return f"{draft} + {measure.notes} + {check} ({done})"


def flow_model() -> FunctionModel:
    async def reply(info: RequestInfo) -> Any:
        prompt = next(m.content or "" for m in info.messages if m.role == "user")
        n = sum(1 for m in info.messages if m.role == "assistant")
        kind = "measure" if prompt.startswith("Measure") else "draft"
        label = f"model:{kind}:{n}"
        await effect(label)
        if kind == "draft":
            return f"a line ({label})"
        if n == 0:
            return Message.assistant(label, (use("note", "m1", text="size"),))
        return Message.assistant(label, (use("finish", "m2", notes=last_tool(info)),))

    return FunctionModel(reply, name="flow")


pipeline = Workflow((draft | measure | check) >> join, name="pipeline", model=flow_model())
TARGETS: dict[str, tuple[Any, dict[str, Any]]] = {
    "supervisor": (boss, {"task": "write the notes and deploy 1.2"}),
    "workflow": (pipeline, {"topic": "rain"}),
}


async def approver(runs: Callable[[], Awaitable[list[durable.DurableRun]]]) -> None:
    """The human: approves whatever the runs `runs()` lists wait for."""
    while True:
        await asyncio.sleep(0.05)
        for run in await runs():
            try:
                if await run.waiting():
                    await run.approve()
            except Exception:  # noqa: BLE001 (the wait may end between the two calls)
                pass


async def work(rt: durable.Runtime) -> None:
    async def waiting() -> list[durable.DurableRun]:
        return [rt.get(info.id) for info in await rt.runs(status="waiting")]

    await approver(waiting)


async def main() -> None:
    rt = durable.launch(DB, targets=[boss, pipeline], worker=SCENARIO == "worker", worker_concurrency=1)
    print("READY", flush=True)
    if SCENARIO == "worker":
        return await work(rt)
    target, kwargs = TARGETS[SCENARIO]
    run_id = f"r-{SCENARIO}"
    try:
        await rt.info(run_id)
        run = rt.get(run_id)
    except Exception:
        run = await rt.start(target, id=run_id, **kwargs)

    async def this_run() -> list[durable.DurableRun]:
        return [run]

    human = asyncio.create_task(approver(this_run))
    result = await run.result()
    human.cancel()
    print("RESULT", json.dumps(result.output), flush=True)
    rt.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
