"""Workflow orchestration in levels (after Opsmate's "5 Levels of Workflow Orchestration").

Level 1: tasks are awaitable, so plain asyncio chains them by hand.
Level 2: the same tasks as a graph, `(home_town(...) | home_town(...)) >> distance`: both home
         towns in one round, then the distance (its two parameters take them in order).
Level 3: a human corrects one task's output and the workflow runs again: only the tasks
         downstream of the edit run; the rest is reused.

A task whose body returns a string sends that string as the request, with the docstring as the
system message. Uses the model you configure (see examples/_setup.py); with none it runs against
an offline stand-in model (it says so), so this file always runs.

    python examples/home_towns.py                                                     # offline stand-in
    python examples/home_towns.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

from _setup import model_or_stand_in, parser
from pydantic import BaseModel, Field

from agentflow import Model
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, task, use_model


class HomeTownInfo(BaseModel):
    person_name: str
    home_town: str = Field(description="The city the person was born in, with its country")


@task(output=HomeTownInfo)  # the body returns the request; the model must return a HomeTownInfo
async def home_town(person_name: str) -> str:
    """You are given a person's name, return the home town of the person."""
    return person_name


@task
async def distance(h1: HomeTownInfo, h2: HomeTownInfo) -> str:
    """You are given two places, return the distance between the two places in km. Answer in one sentence."""
    return f"The distance between {h1.home_town} and {h2.home_town}"


# -- the offline stand-in: knows two home towns and three distances ----------------------------

TOWNS = {"Tony Blair": "Edinburgh, Scotland", "Elon Musk": "Pretoria, South Africa"}
KM = {"Pretoria, South Africa": 8600, "New York": 5200}


def stand_in(info: RequestInfo) -> Any:
    request = info.last.content or ""
    if "finish" in info.tool_names:  # home_town: the request is the person's name
        return call("finish", person_name=request, home_town=TOWNS.get(request, "Springfield"))
    a, b = re.findall(r"The distance between (.*) and (.*)", request)[0]
    return f"The distance between {a} and {b} is about {KM.get(b, 1000):,} km."


# -- the three levels ---------------------------------------------------------------------------

async def level_1(model: Model) -> None:
    print("== Level 1: awaited tasks, chained by hand")
    with use_model(model):  # what a workflow's model= is for its tasks
        results = await asyncio.gather(home_town("Tony Blair"), home_town("Elon Musk"))
        print(results)
        print(await distance(results[0], results[1]))


async def level_2_and_3(model: Model) -> int:
    print("\n== Level 2: the same tasks as a graph")
    flow = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, name="home_towns", model=model)
    print(flow.to_mermaid())
    print(f"rounds: {flow.rounds()}")
    result = await flow.run()
    print(f"distance: {result.output}")

    print("\n== Level 3: a human corrects Elon Musk's home town; the workflow runs again")
    fixed = HomeTownInfo(person_name="Elon Musk", home_town="New York")
    again = await flow.rerun(result, changes={"home_town~2": fixed})
    for record in again.records:
        print(f"  {record.task:<12} {record.status:<7} {record.output}")
    print(f"distance: {again.output}")
    print(f"model calls: first run {result.usage.requests}, re-run {again.usage.requests}")
    return 0


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)

    async def levels() -> int:
        await level_1(model)
        return await level_2_and_3(model)

    return asyncio.run(levels())


if __name__ == "__main__":
    sys.exit(main())
