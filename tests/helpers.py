"""Task agents for supervisor tests: scripted stand-ins that record when and what they were asked."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agentflow import Agent, FunctionModel, StepRunner
from agentflow.models.scripted import RequestInfo, call


@dataclass
class Crew:
    """Agents whose model finishes each task at once with "<agent> did <task>", after a delay."""

    delay: float = 0.0
    delays: dict[str, float] = field(default_factory=dict[str, float])  # by the task's first line
    started: list[str] = field(default_factory=list[str])
    tasks: dict[str, list[str]] = field(default_factory=dict[str, list[str]])
    inflight: int = 0
    peak: int = 0

    def agent(self, name: str, description: str = "", **kwargs: Any) -> Agent[str]:
        async def reply(info: RequestInfo) -> Any:
            task = info.messages[-1].content or ""
            self.started.append(f"{name}:{task.splitlines()[0]}")
            self.tasks.setdefault(name, []).append(task)
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
            try:
                await asyncio.sleep(self.delays.get(task.splitlines()[0], self.delay))
            finally:
                self.inflight -= 1
            return call("finish", answer=f"{name} did {task.splitlines()[0]}")

        return Agent(name, f"You are {name}.", description=description or f"The {name}.",
                     model=FunctionModel(reply), **kwargs)


class StepNames(StepRunner):
    """A step runner that records the name of every step it runs."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def step(self, name: str, fn: Any, result_type: Any) -> Any:
        self.names.append(name)
        return await fn()
