"""Quickstart: a supervisor with two task agents, answering a small real question about this directory.

The supervisor sees each task agent as a tool. It asks the `finder` agent which Python file of the
examples directory is the longest, asks the `counter` agent how many there are and how many lines
they have, and finishes with a typed `Answer`, which is then checked against the files themselves.
(The instructions name each agent's task: the 1.5B local model otherwise stopped after one agent.)

The model is the one you configure (--model, --base-url, OPENAI_API_KEY, ANTHROPIC_API_KEY), else a
pulled local model (`agentflow models pull qwen2.5-coder-1.5b`, served by llama.cpp on this machine).
With none of these it runs on offline stand-ins that play the same protocol, and says so.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from _setup import models_for, parser
from pydantic import BaseModel, Field

from agentflow import Agent, Model, RunFinished, RunResult, RunStarted, Supervisor, ToolStep, tool
from agentflow.models import RequestInfo, call

ROOT = Path(__file__).resolve().parent
QUESTION = ("How many Python files are in the examples directory, how many lines do they have in all, and which "
            "one is the longest?")


def _line_counts() -> dict[str, int]:
    return {p.name: len(p.read_text().splitlines()) for p in sorted(ROOT.glob("*.py"))}


@tool
def python_files() -> dict[str, int]:
    """The examples directory's Python files and their total number of lines: {"files": N, "lines": M}."""
    counts = _line_counts()
    return {"files": len(counts), "lines": sum(counts.values())}


@tool
def longest_files(n: Annotated[int, "how many files to list"] = 3) -> list[str]:
    """The n longest Python files of the examples directory, longest first, as "name: lines"."""
    ranked = sorted(_line_counts().items(), key=lambda kv: -kv[1])[:n]
    return [f"{name}: {lines}" for name, lines in ranked]


class Count(BaseModel):
    files: int = Field(description="how many Python files")
    lines: int = Field(description="their lines, all together")


class Answer(BaseModel):
    files: int = Field(description="how many Python files")
    total_lines: int = Field(description="their lines, all together")
    longest_file: str = Field(description="the name of the longest file")


def build(models: dict[str, Model]) -> Supervisor[Answer]:
    counter = Agent("counter", "You count files. Call python_files, then finish with its numbers.",
                    tools=[python_files], output=Count, model=models["counter"], max_steps=4,
                    description="Counts the examples directory's Python files and their lines.")
    finder = Agent("finder", "You find long files. Call longest_files, then finish with the name of the first one.",
                   tools=[longest_files], model=models["finder"], max_steps=4,
                   description="Names the longest Python file of the examples directory.")
    return Supervisor([finder, counter], model=models["supervisor"], output=Answer, max_steps=8,
                      instructions="First give finder the task 'Which Python file is the longest?'. Then give "
                                   "counter the task 'How many Python files are there, and how many lines in all?'. "
                                   "Then finish with what the two of them found.")


# -- offline stand-ins: one small function per agent plays its part of the protocol ------------------


def _observations(info: RequestInfo) -> list[Any]:
    return [json.loads(m.content or "null") for m in info.messages if m.role == "tool"]


def supervisor_stand_in(info: RequestInfo) -> Any:
    seen = [m.content or "" for m in info.messages if m.role == "tool"]
    if not seen:
        return call("counter", task="How many Python files are in the examples directory, and how many lines?")
    if len(seen) == 1:
        return call("finder", task="Which Python file of the examples directory is the longest?")
    count = json.loads(seen[0])
    return call("finish", files=count["files"], total_lines=count["lines"], longest_file=seen[1])


def counter_stand_in(info: RequestInfo) -> Any:
    seen = _observations(info)
    return call("finish", **seen[0]) if seen else call("python_files")


def finder_stand_in(info: RequestInfo) -> Any:
    if seen := _observations(info):
        return call("finish", answer=seen[0][0].split(":")[0])
    return call("longest_files", n=3)


STAND_INS = {"supervisor": supervisor_stand_in, "counter": counter_stand_in, "finder": finder_stand_in}


async def run(supervisor: Supervisor[Answer]) -> RunResult[Answer]:
    stream = supervisor.stream(QUESTION)
    async for event in stream:
        if "/" not in event.agent:  # the supervisor's own events; show its task agents at work
            continue
        if isinstance(event, RunStarted):
            print(f"  {event.agent} <- {event.task}")
        elif isinstance(event, ToolStep):
            print(f"  {event.agent}: {event.call.name}({event.call.arguments}) -> {event.observation[:60]}")
        elif isinstance(event, RunFinished):
            print(f"  {event.agent} -> {event.output} ({event.stop_reason})")
    return stream.result


def truth() -> Answer:
    counts = _line_counts()
    longest = max(counts, key=lambda name: counts[name])
    return Answer(files=len(counts), total_lines=sum(counts.values()), longest_file=longest)


def is_right(result: RunResult[Answer]) -> bool:
    got, expected = result.output, truth()
    return result.ok and got is not None and (got.files, got.total_lines) == (expected.files, expected.total_lines) \
        and expected.longest_file in got.longest_file  # "shopify_worklist.py" or "shopify_worklist.py: 242"


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    models = models_for(args, STAND_INS)
    print(f"model: {models['supervisor'].name}\nquestion: {QUESTION}\n")
    started = time.monotonic()
    result = asyncio.run(run(build(models)))
    print(f"\nanswer: {result.output}\nstop: {result.stop_reason}   model calls: {result.usage.requests}   "
          f"tokens: {result.usage.total_tokens}   {time.monotonic() - started:.0f} s")
    right = is_right(result)
    print(f"checked against the files themselves: {'right' if right else 'wrong'} ({truth()})")
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
