"""Durable runs: an approval that waits as long as it takes, then a workflow edited and re-run.

Part 1 (the book's human approval of irreversible actions): a release agent may call `deploy`
only after a person approves. The run waits in the database; stop this program (Ctrl-C, or
kill it) and start it again, and the run is still there, still waiting, with the model call it
already made kept. Approve it from another terminal with the command it prints, or pass
`--approve` to have this program approve it after showing the question.

Part 2 (Opsmate level 3, on a database): the home-town workflow runs durably, a human corrects
Tony Blair's home town, and only `distance` runs again.

    python examples/durable_deploy.py --approve                                  # offline stand-in
    python examples/durable_deploy.py --base-url http://127.0.0.1:8080/v1 --constrained
    agentflow runs list --db sqlite:///.agentflow/examples.db                    # then look around
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from _setup import model_or_stand_in, parser
from pydantic import BaseModel, Field

from agentflow import Agent, Model, durable, tool
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, task


@tool(requires_approval=True)
def deploy(service: str, version: str) -> str:
    """Deploy a version of a service to production (irreversible)."""
    return f"{service} {version} is live"


def release_agent(model: Model) -> Agent[str]:
    return Agent(name="release", tools=[deploy], model=model,
                 instructions="You release software. Deploy what you are asked to with the deploy tool, then "
                              "finish with one sentence saying what happened.")


class HomeTown(BaseModel):
    person_name: str
    home_town: str = Field(description="The city the person was born in")


@task(output=HomeTown)
async def home_town(person_name: str) -> str:
    """You are given a person's name, return the home town of the person."""
    return person_name


@task
async def distance(h1: HomeTown, h2: HomeTown) -> str:
    """You are given two places, return the distance between them in km. Answer in one sentence."""
    return f"The distance between {h1.home_town} and {h2.home_town}"


trip = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, name="trip")


def stand_in(info: RequestInfo) -> Any:
    request = info.last.content or ""
    if "deploy" in info.tool_names:  # the release agent
        if info.last.role == "tool":
            return call("finish", answer=f"Done: {info.last.content}." if "live" in request else f"Not deployed: "
                        f"{request}")
        return call("deploy", service="billing", version="2.4.1")
    if "finish" in info.tool_names:  # home_town
        towns = {"Tony Blair": "Edinburgh", "Elon Musk": "Pretoria"}
        return call("finish", person_name=request, home_town=towns.get(request, "Springfield"))
    return f"{request} is about 9,000 km."


async def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--db", default="sqlite:///.agentflow/examples.db", help="where the runs live")
    p.add_argument("--approve", action="store_true", help="approve the deploy here instead of from the CLI")
    args = p.parse_args()
    model = model_or_stand_in(args, stand_in)
    release = release_agent(model)
    trip.model = model
    rt = durable.launch(args.db, targets=[release, trip])
    try:
        print("== Part 1: a deploy that needs a person's approval")
        waiting = [r for r in await rt.runs(status="waiting") if r.target == "release"]
        run = rt.get(waiting[0].id) if waiting else await rt.start(release, "Deploy billing 2.4.1")
        print(f"run {run.id} ({'resumed: it was still waiting' if waiting else 'started'})")
        questions = []
        while not questions:
            questions = await run.waiting()
            await asyncio.sleep(0.05)
        print(f"waiting: {questions[0]['question']}")
        if args.approve:
            await run.approve(reason="release window is open")
            print("approved here (--approve)")
        else:
            print(f"approve it from another terminal:  agentflow runs --db {args.db} approve {run.id}\n"
                  "(or stop this program; the run keeps waiting, and starting it again picks it up)")
        result = await run.result()
        print(f"answer: {result.output}")
        print(f"model calls: {result.usage.requests}; steps: {[s.name for s in await run.steps() if s.kind != 'dbos']}")

        print("\n== Part 2: a workflow run, corrected by a person, re-run on the database")
        first = await rt.start(trip)
        before = await first.result()
        print(f"run {first.id}: {before.outputs['home_town'].home_town}, {before.outputs['home_town~2'].home_town}")
        print(f"  distance: {before.output}")
        second = await first.edit("home_town", HomeTown(person_name="Tony Blair", home_town="Sedgefield")).rerun()
        after = await second.result()
        print(f"run {second.id} (re-run of {first.id}):")
        for record in after.records:
            print(f"  {record.task:<12} {record.status}")
        print(f"  distance: {after.output}")
        print(f"model calls: first run {before.usage.requests}, re-run {after.usage.requests}")
    finally:
        rt.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
