"""Agents as tools: context, typed results, concurrency, usage roll-up, event paths, budgets, loop guard."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import BaseModel

from agentflow import Agent, Budget, FunctionModel, Limits, ScriptedModel, Usage, tool
from agentflow.core.events import RunFinished, RunStarted
from agentflow.core.messages import ToolCall
from agentflow.core.result import ModelStep, ToolStep
from agentflow.models.scripted import RequestInfo, call
from tests.helpers import StepNames


class Facts(BaseModel):
    topic: str
    points: list[str]


def researcher(model: Any, **kwargs: Any) -> Agent[Facts]:
    return Agent("researcher", "You research topics.", output=Facts, model=model, **kwargs)


async def test_agent_tool_schema_takes_a_task_and_optional_context() -> None:
    spec = researcher(ScriptedModel([])).as_tool().spec
    assert spec.name == "researcher" and spec.description == "You research topics."
    assert spec.parameters["required"] == ["task", "context"]
    assert spec.parameters["properties"]["context"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert researcher(ScriptedModel([])).as_tool(context=None).spec.parameters["required"] == ["task"]


async def test_child_sees_only_its_task_and_context_and_returns_its_typed_output() -> None:
    child_model = ScriptedModel([call("finish", topic="socks", points=["warm", "colourful"])])
    parent_model = ScriptedModel([
        call("researcher", task="Find facts about socks", context="The store sells wool socks."),
        "Socks are warm and colourful.",
    ])
    boss = Agent("boss", "You are the boss.", tools=[researcher(child_model)], model=parent_model,
                 ends_with="text")
    result = await boss.run("A long user conversation about socks, secret: 1234")
    assert result.output == "Socks are warm and colourful."
    child_messages = child_model.requests[0].messages
    assert [m.role for m in child_messages] == ["system", "user"]
    assert child_messages[1].content == "Find facts about socks\n\nContext:\nThe store sells wool socks."
    assert all("1234" not in (m.content or "") for m in child_messages)
    observation = parent_model.requests[1].messages[-1]
    assert json.loads(observation.content or "") == {"topic": "socks", "points": ["warm", "colourful"]}
    child = result.children[0]
    assert child.agent == "boss/researcher" and child.output == Facts(topic="socks", points=["warm", "colourful"])


async def test_structured_context_is_passed_as_json() -> None:
    child_model = ScriptedModel([call("finish", answer="ok")])
    worker = Agent("worker", "w", model=child_model)
    parent_model = ScriptedModel([call("worker", task="use it", context={"topic": "x", "points": ["a"]}), "done"])
    boss = Agent("boss", tools=[worker.as_tool(context=Facts)], model=parent_model, ends_with="text")
    assert (await boss.run("go")).output == "done"
    assert child_model.requests[0].last.content == 'use it\n\nContext:\n{"topic":"x","points":["a"]}'


async def test_delegations_in_one_reply_run_concurrently() -> None:
    inflight = peak = 0

    async def slow_child(info: RequestInfo) -> Any:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.05)
        inflight -= 1
        return call("finish", answer=f"did {info.messages[-1].content}")

    worker = Agent("worker", "w", model=FunctionModel(slow_child))
    parent_model = ScriptedModel([[call("worker", task=f"job {i}") for i in range(5)], "all done"])
    boss = Agent("boss", tools=[worker], model=parent_model, ends_with="text")
    result = await boss.run("go")
    assert peak == 5
    assert sorted(c.output for c in result.children) == [f"did job {i}" for i in range(5)]


async def test_child_usage_rolls_up_into_the_parent_result() -> None:
    child_model = ScriptedModel([call("finish", answer="a"), call("finish", answer="b")])
    worker = Agent("worker", "w", model=child_model)
    parent_model = ScriptedModel([[call("worker", task="one"), call("worker", task="two")], "done"])
    result = await Agent("boss", tools=[worker], model=parent_model, ends_with="text").run("go")
    own = sum((s.response.usage for s in result.steps if isinstance(s, ModelStep)), start=Usage())
    children = result.children[0].usage + result.children[1].usage
    assert result.usage.requests == 4 == own.requests + children.requests
    assert result.usage.total_tokens == own.total_tokens + children.total_tokens > own.total_tokens


async def test_child_events_stream_through_the_parent_tagged_with_their_path() -> None:
    worker = Agent("researcher", "w", model=ScriptedModel([call("finish", answer="found")], delay=0.01))
    boss = Agent("supervisor", tools=[worker], ends_with="text",
                 model=ScriptedModel([call("researcher", task="look"), "done"]))
    stream = boss.stream("go")
    events = [(type(e).__name__, e.agent) async for e in stream]
    assert events == [
        ("RunStarted", "supervisor"),
        ("ModelStep", "supervisor"),
        ("RunStarted", "supervisor/researcher"),
        ("ModelStep", "supervisor/researcher"),
        ("ToolStep", "supervisor/researcher"),
        ("RunFinished", "supervisor/researcher"),
        ("ToolStep", "supervisor"),
        ("ModelStep", "supervisor"),
        ("RunFinished", "supervisor"),
    ]
    assert stream.result.output == "done"


async def test_a_hand_written_tool_that_awaits_an_agent_rolls_up_too() -> None:
    worker = Agent("worker", "w", model=ScriptedModel([call("finish", answer="42")]))

    @tool
    async def ask_worker(question: str) -> str:
        """Ask the worker."""
        return (await worker.run(question)).output or ""

    boss = Agent("boss", tools=[ask_worker], model=ScriptedModel([call("ask_worker", question="q"), "42"]),
                 ends_with="text")
    seen: list[Any] = []
    stream = boss.stream("go")
    async for event in stream:
        seen.append(event)
    result = stream.result
    assert result.usage.requests == 3
    assert [c.agent for c in result.children] == ["boss/worker"]
    assert any(isinstance(e, RunStarted) and e.agent == "boss/worker" for e in seen)


async def test_step_names_are_unique_when_an_agent_gets_several_tasks() -> None:
    runner = StepNames()
    worker = Agent("worker", "w", model=ScriptedModel([call("finish", answer="a"), call("finish", answer="b")]))

    @tool
    async def twice(x: str) -> str:
        """Run the worker twice."""
        first = await worker.run(f"{x} 1")
        second = await worker.run(f"{x} 2")
        return f"{first.output}{second.output}"

    parent_model = ScriptedModel([call_with_id("c1", "twice", {"x": "go"}), "ab"])
    boss = Agent("boss", tools=[twice], model=parent_model, ends_with="text")
    assert (await boss.run("go", runner=runner)).output == "ab"
    names = runner.names
    assert names == ["boss/model/0", "boss/tool/c1", "boss/tool/c1/worker/model/0",
                     "boss/tool/c1/worker~2/model/0", "boss/model/2"]
    assert len(set(names)) == len(names)


def call_with_id(call_id: str, name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=json.dumps(args))


async def test_a_failed_child_is_reported_to_the_parent_and_may_be_retried_once() -> None:
    worker = Agent("worker", "w", model=ScriptedModel(["no tool", "no tool", call("finish", answer="ok")]),
                   max_steps=2)
    parent_model = ScriptedModel([call("worker", task="job"), call("worker", task="job"), "ok"])
    result = await Agent("boss", tools=[worker], model=parent_model, ends_with="text").run("go")
    failed, retried = [s for s in result.steps if isinstance(s, ToolStep)]
    assert failed.error == "failed"
    assert failed.observation == ("worker stopped before finishing the task "
                                  "(max_steps: agent 'worker' reached max_steps=2).")
    assert retried.error is None and retried.observation == "ok"
    assert [c.stop_reason for c in result.children] == ["max_steps", "finish"]


async def test_loop_guard_refuses_a_repeated_delegation_then_stops_the_run() -> None:
    worker = Agent("worker", "w", model=ScriptedModel([call("finish", answer="the answer")]))
    parent_model = ScriptedModel([call("worker", task="Same  job"), call("worker", task="same job"),
                                  call("worker", task="same job")])
    result = await Agent("boss", tools=[worker], model=parent_model, ends_with="text").run("go")
    first, refused, stopped = [s for s in result.steps if isinstance(s, ToolStep)]
    assert first.observation == "the answer"
    assert refused.error == "repeated" and "already gave worker this exact task" in refused.observation
    assert "the answer" in refused.observation
    assert stopped.error == "loop"
    assert result.stop_reason == "loop" and result.output is None
    assert "delegated to worker again after being refused" in result.detail
    assert len(result.children) == 1  # the worker ran once


async def test_identical_parallel_delegations_run_once() -> None:
    worker = Agent("worker", "w", model=ScriptedModel([call("finish", answer="x")], delay=0.01))
    parent_model = ScriptedModel([[call("worker", task="job"), call("worker", task="job")], "x"])
    result = await Agent("boss", tools=[worker], model=parent_model, ends_with="text").run("go")
    assert len(result.children) == 1
    assert any("already working on this exact task" in s.observation for s in result.steps
               if isinstance(s, ToolStep))


async def test_a_tree_budget_stops_the_child_and_then_the_parent_with_history() -> None:
    worker = Agent("worker", "w", tools=[lookup],
                   model=ScriptedModel([call("lookup", key="a")] * 10, delay=0))
    parent_model = ScriptedModel([call("worker", task="dig"), "never reached"])
    boss = Agent("boss", tools=[worker], model=parent_model, ends_with="text", limits=Limits(max_steps=4))
    result = await boss.run("go")
    assert result.stop_reason == "max_steps" and result.output is None
    assert result.usage.requests == 4  # 1 boss + 3 worker calls: the whole tree was bounded
    assert result.children[0].stop_reason == "max_steps"
    assert "reached max_steps=4" in result.children[0].detail
    assert isinstance(result.steps[-1], ToolStep) and result.steps[-1].error == "failed"


async def test_a_share_caps_each_child_at_a_fraction_of_what_is_left() -> None:
    worker = Agent("worker", "w", tools=[lookup], model=ScriptedModel([call("lookup", key="a")] * 20))
    parent_model = ScriptedModel([call("worker", task="dig"), "stopped"])
    boss = Agent("boss", tools=[worker.as_tool(share=0.5)], model=parent_model, ends_with="text",
                 limits=Limits(max_steps=11))
    result = await boss.run("go")
    assert result.output == "stopped"
    assert result.children[0].stop_reason == "max_steps"
    assert result.children[0].usage.requests == 5  # half of the 10 steps left after the boss's first
    assert Budget(Limits(max_tokens=100, max_cost=1.0)).share(0.25) == Limits(max_tokens=25, max_cost=0.25)


async def test_run_events_report_each_child_result() -> None:
    worker = Agent("worker", "w", model=ScriptedModel([call("finish", answer="7")]))
    boss = Agent("boss", tools=[worker], model=ScriptedModel([call("worker", task="x"), "7"]), ends_with="text")
    ends = [e async for e in boss.stream("go") if isinstance(e, RunFinished)]
    assert [(e.agent, e.output, e.usage.requests) for e in ends] == [("boss/worker", "7", 1), ("boss", "7", 3)]


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"
