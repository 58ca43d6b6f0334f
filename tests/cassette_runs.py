"""Three runs recorded once on the local Qwen model (scripts/record_cassettes.py) and replayed in
tests/test_cassettes_real.py: a tool agent, a supervisor in worklist mode, and a workflow with a
fan-out. Both build them here, so that a replay sends exactly the requests the recording did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agentflow.tools import calculator

from agentflow import Agent, Supervisor, tool
from agentflow.models.base import Model
from agentflow.workflow import Workflow, step, task


@tool
def count_words(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def tool_agent(model: Model) -> Callable[[], Awaitable[Any]]:
    agent = Agent("math", "Use the calculator for every computation.", tools=[calculator], model=model, max_steps=6)
    return lambda: agent.run("What is 17 * 23 + 4?")


def worklist(model: Model) -> Callable[[], Awaitable[Any]]:
    team = [Agent("math", "Use the calculator.", tools=[calculator], model=model, max_steps=6,
                  description="Computes arithmetic with a calculator."),
            Agent("words", "Use count_words.", tools=[count_words], model=model, max_steps=6,
                  description="Counts the words in a text.")]
    boss = Supervisor(team, model=model, mode="worklist", max_steps=10)
    return lambda: boss.run("What is 12 * 12, and how many words are in 'the quick brown fox jumps'?")


@task("What is the capital city of {country}? Answer with the city's name only.")
async def capital(country: str) -> str: ...


@step
def both(a: str, b: str) -> str:
    return f"{a.strip()} and {b.strip()}"


def workflow(model: Model) -> Callable[[], Awaitable[Any]]:
    flow = Workflow((capital("France").named("a") | capital("Japan").named("b")) >> both, model=model)
    return flow.run


RUNS: dict[str, tuple[Callable[[Model], Callable[[], Awaitable[Any]]], tuple[str, ...]]] = {
    # name: (the run, what its answer must hold)
    "tool_agent": (tool_agent, ("395",)),
    "worklist": (worklist, ("144", "5")),
    "workflow": (workflow, ("Paris", "Tokyo")),
}
