"""Plan, then execute: Opsmate's level-4 task, done by a supervisor in plan mode.

    "Find all the jupyter notebook files in the current directory and count the number of lines of
    each file, add the result and print it."

The supervisor first writes a typed plan: steps, the agent of each, and the steps whose results it
needs. `on_plan` sees the plan before anything runs (it prints it here; it could also edit it, or
stop the run). Then each step runs as soon as the steps it needs are done, and its agent sees only
its task and those results. The current directory is --dir, by default a temporary directory with
three small fake notebooks; the true total, counted in Python, is printed to check the answer.

    python examples/plan_count_lines.py                                                     # offline stand-in
    python examples/plan_count_lines.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

from _setup import models_for, parser
from agentflow.tools import calculator
from pydantic import BaseModel, Field

from agentflow import Agent, Model, ModelSettings, Plan, PlanStepChanged, Supervisor, tool
from agentflow.models import RequestInfo, call

TASK = ("Find all the jupyter notebook files in the current directory and count the number of lines of each "
        "file, add the result and print it.")


@tool
def find_files(pattern: Annotated[str, "a glob pattern, e.g. *.txt"]) -> list[str]:
    """List the files in the current directory that match a glob pattern."""
    return sorted(p.as_posix() for p in Path().glob(pattern) if p.is_file())


@tool
def count_lines(path: Annotated[str, "a file name, as find_files returned it"]) -> int:
    """Count the lines of one file."""
    return len(Path(path).read_text().splitlines())


class FileLines(BaseModel):
    file: str
    lines: int


class Answer(BaseModel):
    total_lines: int = Field(description="The sum of the line counts")
    summary: str = Field(description="One sentence for the user")


def show_plan(plan: Plan) -> None:
    """Called with every plan before it runs: return an edited Plan to change it, or raise to stop."""
    print(f"plan: {plan.goal}")
    for s in plan.steps:
        print(f"  {s.id:<6} {s.agent:<8} {s.task}" + (f"   (needs {', '.join(s.needs)})" if s.needs else ""))
    print()


def build(models: dict[str, Model]) -> Supervisor[Answer]:
    steady = ModelSettings(temperature=0, max_tokens=800)  # the likeliest reply, and no runaway ones
    finder = Agent("finder", "You find files. Call find_files with the glob pattern of your task, then finish with "
                   "the list of file names it returned.", tools=[find_files], output=list[str],
                   description="finds the files that match a glob pattern, e.g. *.txt", model=models["finder"],
                   settings=steady, max_steps=4)
    counter = Agent("counter", "You count lines, one file at a time: call count_lines for the first file in the "
                    "context, then for the next one, until every file has its count. Only then finish, with every "
                    "file and its line count.", tools=[count_lines], output=list[FileLines],
                    description="counts the lines of each file it is given", model=models["counter"],
                    settings=steady, max_steps=10)
    adder = Agent("adder", "You add numbers. Call calculator once, with the line counts of the context joined by "
                  "+ signs, then finish with the result.", tools=[calculator],
                  output=int, description="adds numbers up", model=models["adder"], settings=steady, max_steps=4)
    return Supervisor([finder, counter, adder], mode="plan", output=Answer, on_plan=show_plan, name="opsmate",
                      replan="on_failure", model=models["supervisor"], settings=steady, instructions=(
                          "Plan exactly three steps: find (the finder finds the files, say which pattern), count (the "
                          "counter counts the lines of each file found), sum (the adder adds the counts). No step "
                          "prints: you give the total in your answer. Each step's task says exactly what to do, "
                          "e.g. \"Find the files matching *.txt\"."))


# -- the offline stand-in: one small function per agent plays its part of the protocol ---------------


def observations(info: RequestInfo) -> list[str]:
    return [m.content or "" for m in info.messages if m.role == "tool"]


def context(info: RequestInfo) -> Any:
    """The result of the (one) step this step needs, as the plan passed it on."""
    task = next(m.content or "" for m in info.messages if m.role == "user")
    return next(iter(json.loads(task.split("\n\nContext:\n", 1)[1]).values()))


def supervisor_stand_in(info: RequestInfo) -> Any:
    phase = info.tools[0].parameters["properties"]  # the fields of `finish`: a plan, a review or the answer
    if "goal" in phase:
        return call("finish", goal="Count the lines of every notebook here and add them up", steps=[
            {"id": "find", "agent": "finder", "task": "Find the *.ipynb files in the current directory.",
             "needs": []},
            {"id": "count", "agent": "counter", "task": "Count the lines of each of these files.",
             "needs": ["find"]},
            {"id": "sum", "agent": "adder", "task": "Add up these line counts.", "needs": ["count"]}])
    if "decision" in phase:
        return call("finish", decision="keep", reason="The steps went as planned.", steps=None)
    total = int(re.findall(r"Step sum \(adder\) finished: (\d+)", info.last.content or "")[0])
    return call("finish", total_lines=total, summary=f"The notebooks have {total} lines in all.")


def finder_stand_in(info: RequestInfo) -> Any:
    if not (seen := observations(info)):
        return call("find_files", pattern="*.ipynb")
    return call("finish", answer=json.loads(seen[0]))


def counter_stand_in(info: RequestInfo) -> Any:
    files = context(info)
    if not (seen := observations(info)):
        return [call("count_lines", path=f) for f in files]  # one reply, several calls: they run at once
    return call("finish", answer=[{"file": f, "lines": int(n)} for f, n in zip(files, seen, strict=True)])


def adder_stand_in(info: RequestInfo) -> Any:
    if not (seen := observations(info)):
        return call("calculator", expression="+".join(str(c["lines"]) for c in context(info)))
    return call("finish", answer=int(seen[0]))


STAND_INS = {"supervisor": supervisor_stand_in, "finder": finder_stand_in, "counter": counter_stand_in,
             "adder": adder_stand_in}


def fake_notebooks(directory: Path) -> None:
    for name, cells in {"analysis": 4, "cleaning": 2, "plots": 6}.items():
        notebook = {"cells": [{"cell_type": "code", "source": [f"x = {i}\n", "print(x)"]} for i in range(cells)],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (directory / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1))


async def run(supervisor: Supervisor[Answer]) -> int:
    true_total = sum(len(p.read_text().splitlines()) for p in Path().glob("*.ipynb"))
    stream = supervisor.stream(TASK)
    async for event in stream:
        if isinstance(event, PlanStepChanged):
            detail = event.error if event.status == "failed" else event.output
            print(f"  step {event.step:<6} {event.status:<9} {detail or ''}")
    result = stream.result
    print(f"\nstop: {result.stop_reason} {result.detail}   model calls: {result.usage.requests}   "
          f"tokens: {result.usage.total_tokens}")
    if result.output is None:
        return 1
    print(f"answer: {result.output.summary}\ntotal: {result.output.total_lines} "
          f"(true total, counted in Python: {true_total})")
    return 0 if result.output.total_lines == true_total else 1


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--dir", type=Path, default=None, help="the directory to work in (default: fake notebooks)")
    args = p.parse_args()
    models = models_for(args, STAND_INS)
    with tempfile.TemporaryDirectory(prefix="notebooks-") as temporary:
        directory = args.dir or Path(temporary)
        if args.dir is None:
            fake_notebooks(directory)
        os.chdir(directory)
        print(f"current directory: {directory}\n")
        return asyncio.run(run(build(models)))


if __name__ == "__main__":
    sys.exit(main())
