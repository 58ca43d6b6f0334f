"""Reply text as it is generated (`deltas=True` -> `TextChunk` events), listeners of runs started
elsewhere (`scope.listening`), and what a cancelled turn keeps."""

from __future__ import annotations

import asyncio

from agentflow import Agent, FunctionModel, ScriptedModel, Supervisor
from agentflow.core.events import Event, TextChunk
from agentflow.core.result import ModelStep
from agentflow.models.scripted import RequestInfo, call
from agentflow.runtime.scope import listening


async def test_an_agent_streams_its_reply_text_only_when_asked() -> None:
    agent = Agent("talker", model=ScriptedModel(["one two three"] * 2), ends_with="text")
    stream = agent.stream("hi", deltas=True)
    chunks = [e.text for e in [e async for e in stream] if isinstance(e, TextChunk)]
    assert chunks == ["one", " two", " three"] and stream.result.output == "one two three"
    plain = agent.stream("hi")
    assert not [e async for e in plain if isinstance(e, TextChunk)]
    assert plain.result.output == "one two three"


async def test_a_supervisor_streams_its_own_text_not_its_agents() -> None:
    worker = Agent("worker", model=ScriptedModel(["worker words here"]), ends_with="text")
    boss = Supervisor([worker], model=ScriptedModel([call("worker", task="t"), "boss says done"]))
    stream = boss.session().stream("go", deltas=True)
    events = [e async for e in stream]
    chunks = [e for e in events if isinstance(e, TextChunk)]
    assert "".join(c.text for c in chunks) == "boss says done"
    assert {c.agent for c in chunks} == {"supervisor"}
    # the text came before the step that records the whole reply
    last_step = max(i for i, e in enumerate(events) if isinstance(e, ModelStep) and e.agent == "supervisor")
    assert all(events.index(c) < last_step for c in chunks)


async def test_listening_hears_runs_started_by_someone_else() -> None:
    heard: list[Event] = []
    agent = Agent("a", model=ScriptedModel(["hello there"]), ends_with="text")

    async def elsewhere() -> str:  # e.g. a durable runtime running the agent in its own task
        return (await agent.run("hi")).output

    with listening(heard.append, deltas=True):
        task = asyncio.ensure_future(elsewhere())
    assert await task == "hello there"
    assert "".join(e.text for e in heard if isinstance(e, TextChunk)) == "hello there"
    assert any(isinstance(e, ModelStep) for e in heard)
    heard.clear()  # outside the block nothing is heard
    again = Agent("b", model=ScriptedModel(["x"]), ends_with="text")
    await again.run("hi")
    assert heard == []


async def test_a_cancelled_turn_keeps_what_it_did() -> None:
    started = asyncio.Event()

    async def slow(info: RequestInfo) -> str:
        if len([m for m in info.messages if m.role == "user"]) == 1:
            return "first answer"
        started.set()
        await asyncio.sleep(30)
        return "never"

    session = Supervisor([], model=FunctionModel(slow)).session()
    await session.send("first")
    turn = asyncio.ensure_future(session.send("second"))
    await started.wait()
    turn.cancel()
    try:
        await turn
    except asyncio.CancelledError:
        pass
    said = [m.content for m in session.messages if m.role == "user"]
    assert said == ["first", "second"]  # the cancelled turn's question stays in the conversation
    assert session.results[-1].stop_reason == "cancelled"


async def test_a_worklist_answer_written_before_unseen_results_is_refused() -> None:
    """The model answers while a task runs (another one's result woke it); the task finishes while
    the answer is being written, so the answer never saw its result and must not end the run."""
    async def brain(info: RequestInfo) -> object:
        said = info.last.content or ""
        if info.last.role == "user" and "Worklist:" not in said and "not seen" not in said:
            return [call("add_task", id="fast", description="quick job", agent="fast", priority=2, depends_on=[]),
                    call("add_task", id="slow", description="slow job", agent="slow", priority=1, depends_on=[])]
        if "slow (slow) done" in said:
            return "final: both done"
        await asyncio.sleep(0.3)  # meanwhile the slow task finishes
        return "an answer that never saw the slow result"

    def worker(name: str, seconds: float) -> Agent[str]:
        async def reply(info: RequestInfo) -> str:
            await asyncio.sleep(seconds)
            return f"{name} ready"
        return Agent(name, model=FunctionModel(reply), ends_with="text")

    boss = Supervisor([worker("fast", 0.01), worker("slow", 0.15)], mode="worklist", model=FunctionModel(brain))
    result = await boss.run("do it")
    assert result.output == "final: both done"
