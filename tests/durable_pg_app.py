"""The app the PostgreSQL scale-out test runs in its workers (`agentflow runs worker --app` imports it).

    agentflow runs --db postgresql://... worker --app tests/durable_pg_app.py --concurrency 2

One agent, `pg_worker`: its model calls the tool `work` with the run's task text as `ident`, then
finishes with `done <ident>`. The tool is the side effect: it appends `start <ident> <pid>` to the
file named by $AGENTFLOW_PG_LOG, sleeps $AGENTFLOW_PG_SLEEP seconds (so a kill lands mid-run), and
appends `end <ident> <pid>`.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from agentflow import Agent, FunctionModel, ToolCall, durable, tool
from agentflow.models.scripted import RequestInfo

LOG_ENV, SLEEP_ENV = "AGENTFLOW_PG_LOG", "AGENTFLOW_PG_SLEEP"


def mark(what: str) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"{what} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


@tool
async def work(ident: str) -> str:
    """Do the work for one run."""
    mark(f"start {ident}")
    await asyncio.sleep(float(os.environ.get(SLEEP_ENV, "3")))
    mark(f"end {ident}")
    return f"worked {ident}"


def reply(info: RequestInfo) -> Any:
    ident = next(m.content or "" for m in info.messages if m.role == "user")
    if info.last.role == "tool":
        return ToolCall(id="f", name="finish", arguments=json.dumps({"answer": f"done {ident}"}))
    return ToolCall(id="w", name="work", arguments=json.dumps({"ident": ident}))


agent = Agent(name="pg_worker", tools=[work], model=FunctionModel(reply, name="pg_model"))
durable.register(agent)
