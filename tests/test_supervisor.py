"""Supervisor in route mode, sessions, and task agents made on the fly."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from agentflow import Agent, ConfigError, Limits, ScriptedModel, Supervisor, ToolStep, tool
from agentflow.models.scripted import call
from tests.helpers import Crew


class Summary(BaseModel):
    title: str
    bullets: list[str]


@tool
def fetch(url: str) -> str:
    """Fetch a web page."""
    return f"<html>{url}</html>"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return "sent"


async def test_route_delegates_and_answers_from_the_typed_results() -> None:
    crew = Crew()
    brain = ScriptedModel([[call("researcher", task="find A"), call("writer", task="draft B")], "A and B are done."])
    sup = Supervisor([crew.agent("researcher"), crew.agent("writer")], model=brain, instructions="Be brief.")
    result = await sup.run("Do A and B")
    assert result.ok and result.output == "A and B are done."
    assert sorted(c.agent for c in result.children) == ["supervisor/researcher", "supervisor/writer"]
    system = brain.requests[0].messages[0].content or ""
    assert system.startswith("Be brief.") and "never this conversation" in system
    assert brain.requests[0].tool_names == ["researcher", "writer"]
    assert result.usage.requests == 4


async def test_route_answers_itself_when_no_agent_is_needed() -> None:
    crew = Crew()
    sup = Supervisor([crew.agent("researcher")], model=ScriptedModel(["Hello! How can I help?"]))
    result = await sup.run("hi")
    assert result.output == "Hello! How can I help?" and result.children == [] and crew.started == []


async def test_session_keeps_memory_across_turns_but_agents_see_only_their_task() -> None:
    crew = Crew()
    brain = ScriptedModel(["Nice to meet you, Ada.", call("researcher", task="facts about Ada Lovelace"),
                           "Here are the facts."])
    session = Supervisor([crew.agent("researcher")], model=brain).session()
    first = await session.send("My name is Ada.")
    second = await session.send("Tell me about my namesake.")
    assert first.output == "Nice to meet you, Ada." and second.output == "Here are the facts."
    contents = [m.content for m in brain.requests[1].messages]
    assert "My name is Ada." in contents and "Nice to meet you, Ada." in contents
    assert crew.tasks["researcher"] == ["facts about Ada Lovelace"]
    assert session.usage.requests == first.usage.requests + second.usage.requests == 4
    assert len(session.results) == 2


async def test_session_continues_after_a_turn_stopped_with_unanswered_calls() -> None:
    crew = Crew(delay=0.5)
    brain = ScriptedModel([call("researcher", task="slow"), "second turn reply"])
    session = Supervisor([crew.agent("researcher")], model=brain, limits=Limits(max_seconds=0.05)).session()
    first = await session.send("go")
    assert first.stop_reason == "max_time"
    session.supervisor.limits = Limits()
    second = await session.send("again")
    assert second.output == "second turn reply"
    roles = [(m.role, m.tool_call_id) for m in brain.requests[1].messages]
    call_id = brain.requests[1].messages[2].tool_calls[0].id
    assert ("tool", call_id) in roles  # the unanswered call got a result before the history went back


async def test_a_supervisor_with_a_library_makes_agents_on_the_fly() -> None:
    spawned = ScriptedModel([call("fetch", url="shop.example"), call("finish", title="Shop", bullets=["socks"])])
    brain = ScriptedModel([
        call("new_agent", agent={"name": "summarizer", "instructions": "Summarize pages.", "tools": ["fetch"],
                                 "output": "Summary"}, task="Summarize shop.example"),
        "The shop sells socks.",
    ])
    sup = Supervisor([], model=brain, library=[fetch, send_email], schemas={"Summary": Summary})
    # the model that built agents use is the supervisor's: swap it for the spawned agent's script
    sup.factory.model = spawned  # type: ignore[union-attr]
    result = await sup.run("What does shop.example sell?")
    assert result.output == "The shop sells socks."
    child = result.children[0]
    assert child.agent == "supervisor/summarizer" and child.output == Summary(title="Shop", bullets=["socks"])
    assert spawned.requests[0].tool_names == ["fetch", "finish"]
    assert spawned.requests[0].messages[0].content == "Summarize pages."
    parameters = brain.requests[0].tools[0].parameters
    schema = parameters["$defs"][parameters["properties"]["agent"]["$ref"].split("/")[-1]]
    assert schema["properties"]["tools"]["items"]["enum"] == ["fetch", "send_email"]
    assert schema["properties"]["output"]["enum"] == ["text", "Summary"]
    assert "Tool library for new agents: fetch: Fetch a web page.; send_email" in (
        brain.requests[0].messages[0].content or "")


async def test_an_agent_made_on_the_fly_never_gets_a_tool_outside_the_library() -> None:
    brain = ScriptedModel([
        call("new_agent", agent={"name": "x", "instructions": "i", "tools": ["rm_rf"], "output": "text"}, task="t"),
        "gave up",
    ])
    result = await Supervisor([], model=brain, library=[fetch]).run("go")
    step = next(s for s in result.steps if isinstance(s, ToolStep))
    assert step.error == "invalid_arguments"
    assert "agent.tools.0: Input should be 'fetch' (got 'rm_rf')" in step.observation
    assert result.children == []


async def test_typed_supervisor_output_ends_with_finish() -> None:
    crew = Crew()
    brain = ScriptedModel([call("researcher", task="t"), call("finish", title="T", bullets=["b"])])
    result = await Supervisor([crew.agent("researcher")], model=brain, output=Summary).run("go")
    assert result.output == Summary(title="T", bullets=["b"])


def test_bad_supervisor_configuration_is_named() -> None:
    crew = Crew()
    with pytest.raises(ConfigError, match="mode='chaos' is not known"):
        Supervisor([], mode="chaos")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="two agents share a name"):
        Supervisor([crew.agent("a"), crew.agent("a")])
    with pytest.raises(ConfigError, match="may not be called 'new_agent'"):
        Supervisor([Agent("new_agent", "x")])
    with pytest.raises(ConfigError, match="'text'"):
        Supervisor([], library=[fetch], schemas={"text": Summary})


def test_run_sync_and_plan_given_to_a_route_supervisor() -> None:
    sup = Supervisor([], model=ScriptedModel(["hi", "x"]))
    assert sup.run_sync("hello").output == "hi"
    from agentflow import Plan

    with pytest.raises(ConfigError, match="mode='plan'"):
        sup.run_sync("x", plan=Plan(goal="g", steps=[]))


async def test_supervisor_streams_sub_agent_events_with_paths() -> None:
    crew = Crew()
    sup = Supervisor([crew.agent("researcher")], model=ScriptedModel([call("researcher", task="t"), "done"]))
    stream = sup.stream("go")
    paths: list[tuple[str, Any]] = [(e.agent, getattr(e, "kind", None)) async for e in stream]
    assert ("supervisor/researcher", "model") in paths
    assert paths[0] == ("supervisor", "run_start") and paths[-1] == ("supervisor", "run_end")
    assert stream.result.output == "done"
