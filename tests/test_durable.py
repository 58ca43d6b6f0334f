"""Durable runs on DBOS (SQLite here): journal, human waits, edit-and-rerun, inspection, retention.

Crash-and-resume with real SIGKILLs is in test_durable_crash.py; scale-out on PostgreSQL in
test_durable_postgres.py.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentflow import Agent, ConfigError, FunctionModel, Plan, ScriptedModel, Supervisor, ToolCall, durable, tool
from agentflow.models.scripted import RequestInfo, call
from agentflow.runtime.human import AskHuman, ask_human
from agentflow.workflow import Workflow, step, task

Launch = Callable[..., durable.Runtime]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    made: list[durable.Runtime] = []

    def start(*targets: Any, **kwargs: Any) -> durable.Runtime:
        durable.registry.entries.clear()
        rt = durable.launch(f"sqlite:///{tmp_path}/runs.db", targets=targets, **kwargs)
        made.append(rt)
        return rt

    yield start
    for rt in made:
        rt.shutdown()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if value := await check():
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def use(name: str, ident: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


# -- the journal ---------------------------------------------------------------------------------


async def test_an_agent_run_is_journaled_step_by_step_as_json(launch: Launch, tmp_path: Path) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    agent = Agent(name="adder", tools=[add], model=ScriptedModel([[use("add", "c1", a=2, b=3)],
                                                                   [use("finish", "c2", answer="5")]]))
    rt = launch(agent)
    run = await rt.start(agent, "add 2 and 3")
    result = await run.result()
    assert result.output == "5" and result.stop_reason == "finish" and result.usage.requests == 2
    steps = [(s.name, s.kind) for s in await run.steps() if s.kind != "dbos"]
    assert steps == [("adder/model/0", "model"), ("adder/tool/c1", "tool"), ("adder/model/2", "model")]
    info = await run.info()
    assert (info.status, info.target, info.task) == ("done", "adder", "add 2 and 3")
    db = sqlite3.connect(tmp_path / "runs.db")
    formats = {r[0] for r in db.execute("select serialization from operation_outputs")}
    formats |= {r[0] for r in db.execute("select serialization from workflow_status")}
    assert formats == {"portable_json"}  # never pickle
    stored = db.execute("select output from agentflow_steps where run_id=? and name='adder/tool/c1'",
                        (run.id,)).fetchone()[0]
    assert json.loads(stored)["observation"] == "5"  # the step table holds JSON too


async def test_typed_outputs_come_back_typed(launch: Launch) -> None:
    class Count(BaseModel):
        total: int

    agent = Agent(name="counter", output=Count, model=ScriptedModel([call("finish", total=7)]))
    rt = launch(agent)
    result = await rt.run(agent, "count")
    assert result.output == Count(total=7)


async def test_a_failed_run_resumes_as_a_new_run_that_pays_for_nothing_twice(launch: Launch) -> None:
    calls: list[int] = []
    broken = [True]

    def reply(info: RequestInfo) -> Any:
        n = sum(m.role == "assistant" for m in info.messages)
        if n == 2 and broken[0]:
            raise RuntimeError("provider down")
        calls.append(n)
        return [use("finish", "f", answer="done")] if n == 2 else [use("noop", f"n{n}")]

    @tool
    def noop() -> str:
        """Nothing."""
        return "ok"

    agent = Agent(name="flaky", tools=[noop], model=FunctionModel(reply))
    rt = launch(agent)
    run = await rt.start(agent, "go")
    with pytest.raises(durable.DurableRunError, match="provider down") as failed:
        await run.result()
    partial = failed.value.result
    assert partial is not None and [s.kind for s in partial.steps] == ["model", "tool", "model", "tool"]
    assert await run.status() == "failed"
    failures = [(s.name, s.kind, s.error) for s in await run.steps() if s.error]
    assert len(failures) == 1 and failures[0][:2] == ("flaky/model/4", "model") and "provider down" in failures[0][2]
    broken[0] = False
    again = await run.resume()
    assert again.id != run.id
    assert (await again.result()).output == "done"
    assert calls == [0, 1, 2]  # the two finished model calls were not made again
    kept = [(s.name, s.error) for s in await again.steps()]  # the new run holds the finished steps too
    assert kept == [("flaky/model/0", None), ("flaky/tool/n0", None), ("flaky/model/2", None),
                    ("flaky/tool/n1", None), ("flaky/model/4", None)]


async def test_a_cancelled_run_stops_at_its_next_step_and_keeps_what_it_paid_for(launch: Launch) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    requests: list[int] = []

    @tool
    async def slow() -> str:
        """Takes a while."""
        started.set()
        await release.wait()
        return "finished anyway"

    def reply(info: RequestInfo) -> Any:
        requests.append(len(info.messages))
        return [use("slow", f"s{len(requests)}")]

    agent = Agent(name="long", tools=[slow], model=FunctionModel(reply))
    rt = launch(agent)
    run = await rt.start(agent, "go")
    await asyncio.wait_for(started.wait(), 10)
    await run.cancel()  # while the tool runs
    release.set()
    await until(lambda: _done(run.id, rt))
    assert await run.status() == "cancelled"
    assert len(requests) == 1  # no model call after the cancel
    steps = [(s.name, s.output["observation"] if s.kind == "tool" else None) for s in await run.steps()]
    assert steps == [("long/model/0", None), ("long/tool/s1", "finished anyway")]  # the tool's result is kept


async def _done(run_id: str, rt: durable.Runtime) -> bool:
    return not any(t for t in rt.tasks.values() if not t.done())


async def test_launch_refuses_a_pending_run_whose_target_is_not_registered(tmp_path: Path) -> None:
    @tool(requires_approval=True)
    def wipe() -> str:
        """Wipe."""
        return "wiped"

    agent = Agent(name="wiper", tools=[wipe], model=ScriptedModel([[use("wipe", "w")], "done"]), ends_with="text")
    durable.registry.entries.clear()
    rt = durable.launch(f"sqlite:///{tmp_path}/runs.db", targets=[agent])
    run = await rt.start(agent, "wipe it")
    await until(run.waiting)
    rt.shutdown()  # the run stays pending, waiting
    durable.registry.entries.clear()
    with pytest.raises(ConfigError, match=r"needs the target 'wiper'.*durable.register"):
        durable.launch(f"sqlite:///{tmp_path}/runs.db")
    rt = durable.launch(f"sqlite:///{tmp_path}/runs.db", targets=[agent])  # survives the restart, still waiting
    try:
        run = rt.get(run.id)
        assert (await until(run.waiting))[0]["tool"] == "wipe"
        await run.approve()
        assert (await run.result()).steps[1].observation == "wiped"
    finally:
        rt.shutdown()


def test_a_name_registered_twice_for_different_targets_is_refused() -> None:
    durable.registry.entries.clear()
    durable.register(Agent(name="twin", model=ScriptedModel(["a"])))
    with pytest.raises(ConfigError, match="pass name="):
        durable.register(Agent(name="twin", model=ScriptedModel(["b"])))
    durable.registry.entries.clear()


# -- humans in the loop ----------------------------------------------------------------------------


def risky_agent(effects: list[str], **tool_options: Any) -> Agent[str]:
    @tool(requires_approval=True, **tool_options)
    def delete(path: str) -> str:
        """Delete a file."""
        effects.append(path)
        return f"deleted {path}"

    def reply(info: RequestInfo) -> Any:
        if info.last.role == "tool":
            return f"after: {info.last.content}"
        return [use("delete", "d1", path="/tmp/x")]

    return Agent(name="janitor", tools=[delete], model=FunctionModel(reply), ends_with="text")


async def test_an_approval_pauses_the_run_until_a_human_approves(launch: Launch) -> None:
    effects: list[str] = []
    agent = risky_agent(effects)
    rt = launch(agent)
    run = await rt.start(agent, "clean up")
    waiting = await until(run.waiting)
    assert await run.status() == "waiting" and effects == []
    assert waiting[0]["kind"] == "approval" and "delete" in waiting[0]["question"]
    assert waiting[0]["arguments"] == '{"path": "/tmp/x"}'
    await run.approve()
    result = await run.result()
    assert effects == ["/tmp/x"] and result.output == "after: deleted /tmp/x"
    assert await run.waiting() == []


async def test_a_rejection_reaches_the_model_as_an_observation(launch: Launch) -> None:
    effects: list[str] = []
    agent = risky_agent(effects)
    rt = launch(agent)
    run = await rt.start(agent, "clean up")
    await until(run.waiting)
    await run.reject("that file is still needed")
    result = await run.result()
    assert effects == []
    assert result.output == "after: The call to delete was not approved (that file is still needed), so it did not run."


@pytest.mark.parametrize("approve", [True, False])
async def test_an_approval_times_out_into_the_chosen_outcome(launch: Launch, approve: bool) -> None:
    effects: list[str] = []
    agent = risky_agent(effects, approval_timeout=0.3, approve_on_timeout=approve)
    rt = launch(agent)
    result = await rt.run(agent, "clean up")
    assert effects == (["/tmp/x"] if approve else [])
    if not approve:
        assert "not approved (no answer within 0.3 s)" in (result.output or "")


async def test_ask_human_waits_for_an_answer(launch: Launch) -> None:
    def reply(info: RequestInfo) -> Any:
        if info.last.role == "tool":
            return f"the user said {info.last.content}"
        return [use("ask_human", "q1", question="Which city?")]

    agent = Agent(name="asker", tools=[ask_human], model=FunctionModel(reply), ends_with="text")
    rt = launch(agent)
    run = await rt.start(agent, "plan a trip")
    waiting = await until(run.waiting)
    assert (waiting[0]["kind"], waiting[0]["question"]) == ("question", "Which city?")
    with pytest.raises(ConfigError, match="0 open approval questions"):
        await run.approve()
    await run.answer("Lisbon")
    assert (await run.result()).output == "the user said Lisbon"


async def test_ask_human_with_a_timeout_takes_its_default(launch: Launch) -> None:
    def reply(info: RequestInfo) -> Any:
        return f"got {info.last.content}" if info.last.role == "tool" else [use("ask_human", "q", question="?")]

    agent = Agent(name="patient", tools=[AskHuman(timeout=0.2, default="no preference")], model=FunctionModel(reply),
                  ends_with="text")
    rt = launch(agent)
    assert (await rt.run(agent, "go")).output == "got no preference"


async def test_ask_human_outside_a_durable_run_says_what_to_do() -> None:
    def reply(info: RequestInfo) -> Any:
        return info.last.content if info.last.role == "tool" else [use("ask_human", "q", question="Which city?")]

    agent = Agent(name="asker", tools=[ask_human], model=FunctionModel(reply), ends_with="text")
    result = await agent.run("go")
    assert "cannot wait for one" in (result.output or "") and "agentflow.durable" in (result.output or "")


def worker(name: str, seen: list[str]) -> Agent[str]:
    def reply(info: RequestInfo) -> Any:
        seen.append(info.last.content or "")
        return f"{name} did it"

    return Agent(name=name, description=f"the {name}", model=FunctionModel(reply), ends_with="text")


async def test_a_plan_waits_for_review_and_runs_as_edited(launch: Launch) -> None:
    seen: list[str] = []
    brain = ScriptedModel([call("finish", goal="g", steps=[{"id": "s1", "task": "delete everything",
                                                              "agent": "doer", "needs": []}]),
                           call("finish", decision="keep", reason="ok", steps=None), "all done"])
    sup = Supervisor([worker("doer", seen)], model=brain, mode="plan", on_plan="human", name="planner")
    rt = launch(sup)
    run = await rt.start(sup, "tidy up")
    waiting = await until(run.waiting)
    assert waiting[0]["kind"] == "plan" and waiting[0]["plan"]["steps"][0]["task"] == "delete everything"
    plan = Plan.model_validate(waiting[0]["plan"])
    plan.steps[0].task = "delete only the temp files"
    await run.review_plan(plan)
    result = await run.result()
    assert result.output == "all done"
    assert seen == ["delete only the temp files"]


async def test_a_refused_plan_ends_the_run_before_any_step(launch: Launch) -> None:
    seen: list[str] = []
    brain = ScriptedModel([call("finish", goal="g", steps=[{"id": "s1", "task": "x", "agent": "doer", "needs": []}])])
    sup = Supervisor([worker("doer", seen)], model=brain, mode="plan", on_plan="human", name="planner2")
    rt = launch(sup)
    run = await rt.start(sup, "tidy up")
    await until(run.waiting)
    await run.review_plan(accept=False, reason="not today")
    result = await run.result()
    assert (result.stop_reason, result.detail) == ("cancelled", "the plan was refused: not today")
    assert seen == []


# -- edit and re-run -------------------------------------------------------------------------------


class HomeTown(BaseModel):
    person_name: str
    home_town: str


@task(output=HomeTown)
async def home_town(person_name: str) -> str:
    """Return the home town of the person."""
    return person_name


@step
def distance(h1: HomeTown, h2: HomeTown) -> str:
    return f"{h1.home_town} -> {h2.home_town}"


async def test_edit_one_output_and_rerun_only_its_descendants(launch: Launch) -> None:
    asked: list[str] = []

    def reply(info: RequestInfo) -> Any:
        asked.append(info.last.content or "")
        towns = {"Tony Blair": "Edinburgh", "Elon Musk": "Pretoria"}
        return call("finish", person_name=info.last.content, home_town=towns[info.last.content or ""])

    trip = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, name="trip",
                    model=FunctionModel(reply))
    rt = launch(trip)
    run = await rt.start(trip)
    first = await run.result()
    assert first.output == "Edinburgh -> Pretoria" and sorted(asked) == ["Elon Musk", "Tony Blair"]
    assert first.outputs["home_town"] == HomeTown(person_name="Tony Blair", home_town="Edinburgh")
    with pytest.raises(ConfigError, match="not a valid"):
        await run.edit("home_town", {"person_name": "Tony Blair"}).rerun()
    run.changes.clear()
    again = await run.edit("home_town", HomeTown(person_name="Tony Blair", home_town="Sedgefield")).rerun()
    second = await again.result()
    assert second.output == "Sedgefield -> Pretoria"
    assert len(asked) == 2  # no model call again: the other home town is reused
    status = {r.task: r.status for r in second.records}
    assert status == {"home_town": "edited", "home_town~2": "reused", "distance": "done"}
    assert again.id != run.id and (await rt.info(again.id)).target == "trip"


async def test_only_workflow_runs_can_be_rerun(launch: Launch) -> None:
    agent = Agent(name="plain", model=ScriptedModel(["hi"]), ends_with="text")
    rt = launch(agent)
    run = await rt.start(agent, "hello")
    await run.result()
    with pytest.raises(ConfigError, match="only workflow runs"):
        await run.rerun()


# -- inspection and retention ------------------------------------------------------------------------


async def test_runs_are_listed_newest_first_and_old_finished_ones_pruned(launch: Launch) -> None:
    effects: list[str] = []
    done = Agent(name="quick", model=ScriptedModel(["one", "two"]), ends_with="text")
    waiting = risky_agent(effects)
    rt = launch(done, waiting)
    first = await rt.start(done, "first")
    await first.result()
    second = await rt.start(done, "second")
    await second.result()
    paused = await rt.start(waiting, "clean")
    await until(paused.waiting)
    listed = await rt.runs()
    assert [r.id for r in listed] == [paused.id, second.id, first.id]
    assert [r.status for r in listed] == ["waiting", "done", "done"]
    assert [r.id for r in await rt.runs(status="waiting")] == [paused.id]
    assert rt.prune_now(older_than_days=0) == 2  # finished ones only, and their steps
    assert [r.id for r in await rt.runs()] == [paused.id]
    assert await first.steps() == [] and await paused.steps() != []
    await paused.cancel()
    assert await paused.status() == "cancelled"


async def test_a_workflow_input_error_is_raised_before_anything_is_stored(launch: Launch) -> None:
    trip = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, name="trip2",
                    model=FunctionModel(lambda info: "x"))
    rt = launch(trip)
    with pytest.raises(ConfigError, match="has no input 'city'"):
        await rt.start(trip, city="Paris")
    with pytest.raises(ConfigError, match="is a workflow"):
        await rt.start(trip, "a task")
    assert await rt.runs() == []


async def test_a_durable_run_speaks_to_a_real_sdk_and_journals_its_replies(launch: Launch, llm_server: Any) -> None:
    from agentflow.models import get_model
    from tests.llm_server import openai_reply

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    llm_server.add(openai_reply(tool_calls=[("call_abc", "weather", {"city": "Oslo"})]),
                   openai_reply(tool_calls=[("call_def", "finish", {"answer": "It is sunny in Oslo."})]))
    model = get_model("openai:gpt-4o-mini", base_url=llm_server.url + "/v1", api_key="sk-test")
    agent = Agent(name="forecaster", tools=[weather], model=model)
    rt = launch(agent)
    run = await rt.start(agent, "Weather in Oslo?")
    result = await run.result()
    assert result.output == "It is sunny in Oslo." and len(llm_server.requests) == 2
    steps = {s.name: s for s in await run.steps()}
    assert steps["forecaster/tool/call_abc"].output["observation"] == "sunny in Oslo"
    assert steps["forecaster/model/0"].output["message"]["tool_calls"][0]["id"] == "call_abc"
    assert steps["forecaster/model/0"].input_tokens > 0


async def test_a_failed_workflow_run_is_rerun_with_the_failing_output_given_by_hand(launch: Launch) -> None:
    ran: list[str] = []

    @step
    def fetch() -> int:
        ran.append("fetch")
        return 20

    @step
    def parse(fetch: int) -> int:
        ran.append("parse")
        raise ValueError("the page changed")

    @step
    def report(parse: int) -> str:
        ran.append("report")
        return f"total {parse}"

    flow = Workflow(fetch >> parse >> report, name="scrape")
    rt = launch(flow)
    run = await rt.start(flow)
    with pytest.raises(durable.DurableRunError, match="task 'parse' failed") as failed:
        await run.result()
    assert failed.value.result.outputs == {"fetch": 20}
    fixed = await run.edit("parse", 21).rerun()
    result = await fixed.result()
    assert result.output == "total 21" and ran == ["fetch", "parse", "report"]
    assert {r.task: r.status for r in result.records} == {"fetch": "reused", "parse": "edited", "report": "done"}


async def test_a_supervisor_session_is_durable_turn_by_turn_and_can_be_reopened(launch: Launch) -> None:
    seen: list[int] = []

    def reply(info: RequestInfo) -> Any:
        users = [m.content for m in info.messages if m.role == "user"]
        seen.append(len(users))
        return call("finish", answer=f"turn {len(users)}: you said {' then '.join(u or '' for u in users)}")

    boss = Supervisor([], model=FunctionModel(reply), name="chatty")
    rt = launch(boss)
    session = await rt.session(boss)
    assert (await session.send("hello")).output == "turn 1: you said hello"
    assert (await session.send("again")).output == "turn 2: you said hello then again"
    assert {r.id for r in await rt.runs()} == {f"{session.id}/1", f"{session.id}/2"}
    reopened = await rt.session(boss, id=session.id)  # e.g. in another process, days later
    assert (await reopened.send("third")).output == "turn 3: you said hello then again then third"
    assert seen == [1, 2, 3]


async def test_a_workflow_task_waits_for_a_persons_answer(launch: Launch) -> None:
    from agentflow.workflow import ask_human as ask

    @step
    def options() -> str:
        return "Lisbon or Oslo"

    @step
    def book(ask_human: str) -> str:
        return f"booked {ask_human}"

    flow = Workflow(options >> ask("Which city: {options}?") >> book, name="booking")
    rt = launch(flow)
    run = await rt.start(flow)
    waiting = await until(run.waiting)
    assert waiting[0]["question"] == "Which city: Lisbon or Oslo?" and waiting[0]["agent"] == "booking/ask_human"
    await run.answer("Oslo")
    assert (await run.result()).output == "booked Oslo"
    in_memory = Workflow(options >> ask("Which city: {options}?", default="Lisbon") >> book, name="booking2")
    assert (await in_memory.run()).output == "booked Lisbon"


async def test_a_worklist_supervisor_runs_durably(launch: Launch) -> None:
    from tests.helpers import Crew

    crew = Crew(delay=0.02)
    def plan(info: RequestInfo) -> Any:
        if len(info.messages) <= 2:
            return [call("add_task", id="a", description="job a", agent="worker", priority=2, depends_on=[]),
                    call("add_task", id="b", description="job b", agent="worker", priority=1, depends_on=["a"])]
        return "Both jobs are done."  # refused while a task is still open, taken once both are done

    brain = FunctionModel(plan)
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", name="lister")
    rt = launch(sup)
    run = await rt.start(sup, "do the jobs")
    result = await run.result()
    assert result.output == "Both jobs are done." and crew.started == ["worker:job a", "worker:job b"]
    names = [s.name for s in await run.steps() if s.kind in ("model", "tool")]
    assert names[:3] == ["lister/worklist/model/0", "lister/task/a/worker/model/0", "lister/task/b/worker/model/0"]


# -- events, waiting, sessions by id ----------------------------------------------------------------


async def test_recorded_events_are_those_stream_yields_and_read_back_in_order(launch: Launch) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def agent() -> Agent[str]:
        return Agent(name="adder", tools=[add], model=ScriptedModel([[use("add", "c1", a=2, b=3)],
                                                                      [use("finish", "c2", answer="5")]]))

    live = [e.kind async for e in agent().stream("add 2 and 3")]
    rt = launch(durable_agent := agent(), record_events=True)
    run = await rt.start(durable_agent, "add 2 and 3")
    recorded = [(n, e) async for n, e in run.events()]
    assert [e["kind"] for _, e in recorded] == live == ["run_start", "model", "tool", "model", "tool", "run_end"]
    assert [n for n, _ in recorded] == [1, 2, 3, 4, 5, 6]
    assert [e["kind"] for _, e in [x async for x in run.events(after=4)]] == ["tool", "run_end"]
    assert (await run.result()).output == "5"


async def test_a_run_without_recorded_events_has_none(launch: Launch) -> None:
    agent = Agent(name="quiet", model=ScriptedModel([use("finish", "c1", answer="ok")]))
    rt = launch(agent)
    run = await rt.start(agent, "go")
    assert [x async for x in run.events()] == [] and await run.ended()


async def test_wait_returns_when_a_run_asks_a_person_and_cancel_wakes_it(launch: Launch) -> None:
    agent = Agent(name="asking", tools=[ask_human], model=ScriptedModel([use("ask_human", "q1", question="Why?")]))
    rt = launch(agent, record_events=True)
    run = await rt.start(agent, "ask")
    assert await run.wait(10, or_asking=True) and not await run.ended()
    assert [w["kind"] for w in await run.waiting()] == ["question"]
    await run.cancel()
    assert await run.wait(10) and await run.status() == "cancelled"
    kinds = [e["kind"] async for _, e in run.events()]
    assert kinds[-1] == "human_request" and "human_reply" not in kinds


async def test_a_session_is_found_again_by_its_id_alone(launch: Launch) -> None:
    chat = Agent(name="chatty", ends_with="text", model=FunctionModel(
        lambda info: " | ".join(m.content or "" for m in info.messages if m.role == "user")))
    rt = launch(chat)
    session = await rt.session(chat, id="s-1")
    await session.send("I live in Berlin")
    again = await rt.reopen("s-1")
    assert (again.target, again.turns) == ("chatty", 1)
    assert (await again.send("where?")).output == "I live in Berlin | where?"
    assert [(t.task, t.status) for t in await again.history()] == [("I live in Berlin", "done"), ("where?", "done")]
    with pytest.raises(ConfigError, match="there is no session 'nope'"):
        await rt.reopen("nope")
    other = Agent(name="other", model=FunctionModel(lambda info: "x"))
    durable.register(other)
    with pytest.raises(ConfigError, match="talks to 'chatty'"):
        await rt.session(other, id="s-1")


async def test_runs_are_listed_by_target_and_status_past_the_first_page(launch: Launch) -> None:
    a = Agent(name="a", model=FunctionModel(lambda info: use("finish", "f", answer="a")))
    b = Agent(name="b", model=FunctionModel(lambda info: use("finish", "f", answer="b")))
    rt = launch(a, b)
    for _ in range(3):
        await rt.run(a, "go")
        await rt.run(b, "go")
    listed = await rt.runs(target="a", status="done", limit=2)
    rest = await rt.runs(target="a", limit=5, offset=2)
    assert len(listed) == 2 and len(rest) == 1 and {r.target for r in listed + rest} == {"a"}
    assert listed[0].created_at is not None and rest[0].created_at is not None
    assert listed[0].created_at >= listed[1].created_at >= rest[0].created_at
    with pytest.raises(ConfigError, match="no run status 'finished'"):
        await rt.runs(status="finished")
