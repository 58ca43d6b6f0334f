"""Workflows: prompt tasks, binding, graph checks, concurrency, routes, fan-outs, loops, runs."""

from __future__ import annotations

import asyncio
import enum
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agentflow import (
    Agent,
    ConfigError,
    CycleError,
    FunctionModel,
    Limits,
    ModelSettings,
    ModelStep,
    RunFinished,
    ScriptedModel,
)
from agentflow.models.scripted import RequestInfo, call
from agentflow.workflow import (
    PythonTask,
    TaskFinished,
    TaskStarted,
    Workflow,
    WorkflowError,
    each,
    loop,
    route,
    step,
    task,
    use_model,
)
from tests.helpers import StepNames


class HomeTownInfo(BaseModel):
    person_name: str
    home_town: str


@task("Pick a random character from The Lord of the Rings; answer with the name only")
async def character() -> str: ...


@task("What is a famous line by {character}?")
async def line(character: str) -> str: ...


@task
async def home_town(person_name: str) -> HomeTownInfo:
    """You are given a person's name, return the home town of the person."""
    return person_name


@task
async def distance(h1: HomeTownInfo, h2: HomeTownInfo) -> str:
    """You are given two places, return the distance between the two places in km."""
    return f"The distance between {h1.home_town} and {h2.home_town}"


def towns(info: RequestInfo) -> Any:
    """Answers home_town with a finish call and distance with text, whatever the order."""
    asked = info.last.content or ""
    if "distance between" in asked:
        return f"far: {asked}"
    return call("finish", person_name=asked, home_town={"Tony Blair": "Edinburgh"}.get(asked, "Pretoria"))


# -- prompt tasks ---------------------------------------------------------------------------------

async def test_a_chain_formats_each_prompt_with_the_output_before_it() -> None:
    model = ScriptedModel(["Frodo", "I will take the Ring"])
    result = await Workflow(character >> line, model=model).run()
    assert result.output == "I will take the Ring" and result["character"] == "Frodo"
    assert [r.messages[-1].content for r in model.requests] == [
        "Pick a random character from The Lord of the Rings; answer with the name only",
        "What is a famous line by Frodo?",
    ]
    assert model.requests[0].tools == []  # a str task is templated: no finish schema is sent


async def test_a_typed_task_is_tool_based_and_its_bad_output_is_fed_back() -> None:
    model = ScriptedModel([call("finish", person_name="Tony Blair"), call("finish", person_name="Tony Blair",
                                                                          home_town="Edinburgh")])
    out = await Workflow(home_town("Tony Blair"), model=model).run()
    assert out.output == HomeTownInfo(person_name="Tony Blair", home_town="Edinburgh")
    first = model.requests[0]
    assert first.tool_names == ["finish"] and first.settings.tool_choice == "required"
    assert first.messages[-1].content == "Tony Blair"  # the body's return is the request ...
    assert first.messages[0].role == "system" and "home town" in (first.messages[0].content or "")  # docstring
    assert "home_town" in (model.requests[1].messages[-1].content or "")  # the validation error went back


async def test_parameters_the_prompt_does_not_mention_are_appended_and_models_shown_as_json() -> None:
    @task("Summarize the storefront for {owner}.")
    async def summarize(owner: str, page: HomeTownInfo, note: str | None = None) -> str: ...

    model = ScriptedModel(["ok"])
    await Workflow(summarize(owner="Dana", page=HomeTownInfo(person_name="a", home_town="b")), model=model).run()
    assert model.requests[0].messages[-1].content == (
        'Summarize the storefront for Dana.\n\npage:\n{"person_name":"a","home_town":"b"}')  # None left out


async def test_attribute_placeholders_reach_into_structured_inputs() -> None:
    @task("Write to {store.person_name} in {store.home_town}.")
    async def write(store: HomeTownInfo) -> str: ...

    model = ScriptedModel(["done"])
    await Workflow(write(HomeTownInfo(person_name="Dana", home_town="Leeds")), model=model).run()
    assert model.requests[0].messages[-1].content == "Write to Dana in Leeds."


def test_prompt_mistakes_are_refused_when_the_task_is_defined() -> None:
    with pytest.raises(ConfigError, match=r"refers to \{charcter\}.*parameters: character"):
        @task("A line by {charcter}")
        async def bad(character: str) -> str: ...
    with pytest.raises(ConfigError, match="has no prompt"):
        @task
        async def silent(x: str) -> str: ...


async def test_nodes_are_awaitable_one_task_workflows() -> None:  # Opsmate level 1
    home_town_m = home_town.workflow(model=FunctionModel(towns))
    assert (await home_town_m.run(person_name="Tony Blair")).output.home_town == "Edinburgh"

    @step
    async def both() -> list[str]:
        return [t.home_town for t in await asyncio.gather(double("Tony"), double("Elon"))]

    @step
    def double_fn(name: str) -> HomeTownInfo:
        return HomeTownInfo(person_name=name, home_town=name * 2)

    double = double_fn
    assert (await Workflow(both).run()).output == ["TonyTony", "ElonElon"]
    assert (await double("Ab")).home_town == "AbAb"


# -- binding --------------------------------------------------------------------------------------

async def test_parallel_outputs_bind_positionally_and_duplicates_get_distinct_names() -> None:
    flow = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, model=FunctionModel(towns))
    result = await flow.run()
    assert set(result.outputs) == {"home_town", "home_town~2", "distance"}
    assert result.output == "far: The distance between Edinburgh and Pretoria"
    assert flow.rounds() == [["home_town", "home_town~2"], ["distance"]]


async def test_names_bind_across_the_dag_not_only_to_the_previous_task() -> None:
    @step
    def store() -> str:
        return "socks"

    @step
    def idea(store: str) -> str:
        return f"idea for {store}"

    @step
    def email(store: str, idea: str) -> str:
        return f"{store}: {idea}"

    flow = Workflow(store >> idea >> email)
    assert (await flow.run()).output == "socks: idea for socks"
    assert set(flow.graph.dag.edges) == {("store", "idea"), ("idea", "email"), ("store", "email")}


async def test_run_inputs_are_checked_before_anything_runs() -> None:
    @step
    def greet(name: str, punct: str = "!") -> str:
        return f"hi {name}{punct}"

    flow = Workflow(greet)
    assert set(flow.inputs) == {"name", "punct"} and not flow.inputs["punct"].required
    assert (await flow.run(name="Ann")).output == "hi Ann!"
    with pytest.raises(ConfigError, match=r"needs the input 'name' \(for greet\).*pass name=\.\.\."):
        await flow.run()
    with pytest.raises(ConfigError, match=r"has no input 'nam' \(inputs: name, punct\)"):
        await flow.run(name="x", nam="y")
    with pytest.raises(ConfigError, match=r"input 'name' is not a valid"):
        await flow.run(name=["not", "a", "str"])


def test_a_name_that_runs_at_the_same_time_or_later_is_a_build_error() -> None:
    @step
    def a() -> str:
        return "a"

    @step
    def b(a: str) -> str:
        return a

    with pytest.raises(ConfigError, match=r"task 'b' takes 'a'.*'a' runs at the same time.*a >> b"):
        Workflow(a | b)
    with pytest.raises(ConfigError, match=r"'a' runs after it"):
        Workflow(b >> a)


def test_type_mismatches_ambiguous_names_and_undeclared_inputs_are_build_errors() -> None:
    @step
    def name_only() -> str:
        return "x"

    with pytest.raises(ConfigError, match=r"parameter 'h1' expects HomeTownInfo, but 'name_only' produces str"):
        Workflow((name_only | name_only.named("other")) >> distance)

    @step
    def home(home_town: HomeTownInfo) -> str:
        return home_town.home_town

    with pytest.raises(ConfigError, match="several tasks are called 'home_town'"):
        Workflow((home_town("a") | home_town("b")) >> home)

    @step
    def greet(nmae: str) -> str:
        return nmae

    with pytest.raises(ConfigError, match=r"task 'greet' needs 'nmae'.*declared input \(name\)"):
        Workflow(greet, inputs=["name"])


def test_every_binding_mistake_of_a_workflow_is_reported_in_one_error() -> None:
    @step
    def a() -> str:
        return "a"

    @step
    def b(a: str, nmae: str) -> str:
        return a + nmae

    @step
    def c(a: str, b: int, tpoic: str) -> str:
        return a + str(b) + tpoic

    with pytest.raises(ConfigError) as caught:
        Workflow((a | b) >> c, inputs=["name", "topic"])
    message = str(caught.value)
    assert message.startswith("4 mistakes:\n- "), message
    for part in (r"task 'b' takes 'a'.*'a' runs at the same time", r"task 'b' needs 'nmae'",
                 r"'b' expects int, but 'b' produces str", r"task 'c' needs 'tpoic'"):
        assert re.search(part, message), (part, message)


def blank(name: str) -> PythonTask[str]:
    """A step that does nothing, for tests about the graph's shape."""
    return step(name=name)(lambda: "")


def test_a_cycle_outside_a_loop_is_named() -> None:
    a, b = blank("a"), blank("b")

    with pytest.raises(CycleError, match=r"a -> b -> a|b -> a -> b"):
        Workflow(a >> b >> a)


# -- concurrency ----------------------------------------------------------------------------------

def timed(name: str, seconds: float, log: list[tuple[str, float, float]]) -> Any:
    async def run() -> str:
        start = time.monotonic()
        await asyncio.sleep(seconds)
        log.append((name, start, time.monotonic()))
        return name

    run.__name__ = name
    return step(run)


async def test_parallel_branches_overlap_and_a_task_starts_as_soon_as_its_inputs_are_ready() -> None:
    log: list[tuple[str, float, float]] = []
    fast1, fast2, slow = timed("fast1", 0.05, log), timed("fast2", 0.05, log), timed("slow", 0.3, log)
    await Workflow((fast1 >> fast2) | slow).run()
    spans = {n: (s, e) for n, s, e in log}
    assert spans["fast1"][0] < spans["slow"][1] and spans["slow"][0] < spans["fast1"][1]  # overlap
    assert spans["fast2"][1] < spans["slow"][1]  # not held back to a round boundary


async def test_the_concurrency_limit_holds() -> None:
    log: list[tuple[str, float, float]] = []
    flow = Workflow(timed("a", 0.05, log) | timed("b", 0.05, log) | timed("c", 0.05, log), concurrency=1)
    await flow.run()
    spans = sorted((s, e) for _, s, e in log)
    assert all(spans[i][1] <= spans[i + 1][0] + 1e-3 for i in range(2))


# -- routes ---------------------------------------------------------------------------------------

class Classification(BaseModel):
    category: Literal["technical", "billing", "general"]


@task("Classify this support query: {query}")
async def classify(query: str) -> Classification: ...


def answer_as(kind: str) -> Any:
    @task(f"You are a {kind} specialist. Answer: {{query}}", name=kind)
    async def handler(query: str) -> str: ...

    return handler


def support_model(info: RequestInfo) -> Any:
    asked = info.last.content or ""
    if asked.startswith("Classify"):
        return call("finish", category="billing" if "payment" in asked else "technical")
    return asked.split(".")[0]


async def test_a_route_runs_only_the_branch_its_router_names() -> None:
    flow = Workflow(route(classify, {k: answer_as(k) for k in ("technical", "billing", "general")}, name="respond")
                    , model=FunctionModel(support_model))
    result = await flow.run(query="My payment failed")
    assert result.output == "You are a billing specialist" and result["respond"] == result.output
    assert "technical" not in result.outputs and "general" not in result.outputs
    assert next(r for r in result.records if r.task == "respond").detail == "branch 'billing'"


def test_a_route_must_cover_every_value_its_router_can_return() -> None:
    with pytest.raises(ConfigError, match=r"can return 'general', which has no branch"):
        route(classify, {"technical": answer_as("technical"), "billing": answer_as("billing")})
    with pytest.raises(ConfigError, match=r"branch 'refunds' can never be chosen"):
        route(classify, {k: answer_as(k) for k in ("technical", "billing", "general", "refunds")})
    route(classify, {"billing": answer_as("billing")}, default=answer_as("general"))  # a default covers the rest


async def test_routes_by_str_enum_and_key_with_a_default() -> None:
    class Size(enum.Enum):
        SMALL = "small"
        BIG = "big"

    @step
    def measure(n: int) -> Size:
        return Size.BIG if n > 10 else Size.SMALL

    @step
    def small(n: int) -> str:
        return f"{n} is small"

    @step
    def big(n: int) -> str:
        return f"{n} is big"

    flow = Workflow(route(measure, {"small": small, Size.BIG: big}))
    assert (await flow.run(n=3)).output == "3 is small" and (await flow.run(n=30)).output == "30 is big"

    @step
    def parity(n: int) -> int:
        return n

    keyed = Workflow(route(parity, {0: small}, key=lambda n: n % 2, default=big))
    assert (await keyed.run(n=4)).output == "4 is small" and (await keyed.run(n=5)).output == "5 is big"


# -- fan-out ---------------------------------------------------------------------------------------

class TaskPlan(BaseModel):
    subtasks: list[str]


@step
def decompose(topic: str) -> TaskPlan:
    return TaskPlan(subtasks=[f"{topic} ethics", f"{topic} safety", f"{topic} history"])


@step
async def research(subtask: str, depth: int = 1) -> str:
    await asyncio.sleep(0.05)
    return f"notes on {subtask} x{depth}"


@step
def synthesize(research: list[str]) -> str:
    return " | ".join(research)


async def test_each_maps_a_worker_over_a_field_of_a_structured_output_concurrently() -> None:
    flow = Workflow(decompose >> each(research, over="decompose.subtasks") >> synthesize)
    started = time.monotonic()
    result = await flow.run(topic="AI", depth=2)
    assert result.output == "notes on AI ethics x2 | notes on AI safety x2 | notes on AI history x2"
    assert time.monotonic() - started < 0.14  # three 0.05 s workers at once, not one after another
    assert sorted(r.id for r in result.records if r.task == "research[]") == [
        "research[0]", "research[1]", "research[2]"]


def test_each_over_a_structured_output_without_a_field_is_a_build_error_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"whose output is TaskPlan, not a list.*over='decompose.subtasks'"):
        Workflow(decompose >> each(research, over="decompose"))
    with pytest.raises(ConfigError, match=r"TaskPlan has no field 'steps'"):
        Workflow(decompose >> each(research, over="decompose.steps"))


async def test_each_over_a_run_input_and_a_failing_item_names_the_item() -> None:
    @step
    def label(email: str) -> str:
        if "boom" in email:
            raise ValueError("unreadable email")
        return "spam" if "win" in email else "normal"

    flow = Workflow(each(label, over="emails"))
    assert (await flow.run(emails=["win a prize", "lunch?"])).output == ["spam", "normal"]
    assert (await flow.run(emails=[])).output == []
    with pytest.raises(WorkflowError, match=r"task 'label\[1\]' failed: ValueError: unreadable email") as err:
        await flow.run(emails=["hi", "boom", "win"])
    assert {r.id: r.status for r in err.value.result.records if "[" in r.id} == {
        "label[0]": "done", "label[1]": "failed", "label[2]": "done"}


# -- loops ----------------------------------------------------------------------------------------

class Review(BaseModel):
    score: int
    feedback: str


def optimizer(scores: list[int]) -> tuple[Workflow[Any], list[str]]:
    seen: list[str] = []

    @step
    def generate(spec: str, generate: str | None = None, review: Review | None = None) -> str:
        seen.append(f"{generate}/{review.feedback if review else None}")
        return f"v{len(seen)} of {spec}"

    @step
    def review(generate: str) -> Review:
        score = scores[len(seen) - 1]
        return Review(score=score, feedback=f"got {score}")

    @step
    def publish(generate: str, improve: Review) -> str:
        return f"{generate} ({improve.score})"

    body = loop(generate >> review, until=lambda r: r.score >= 8, max_iterations=3, name="improve")
    return Workflow(body >> publish), seen


async def test_a_loop_feeds_the_previous_iteration_back_and_stops_when_until_holds() -> None:
    flow, seen = optimizer([5, 9, 10])
    result = await flow.run(spec="fib")
    assert seen == ["None/None", "v1 of fib/got 5"]
    assert result.output == "v2 of fib (9)"
    assert [a["review"].score for a in result.attempts["improve"]] == [5, 9]
    assert next(r for r in result.records if r.task == "improve").detail == "until was met after 2 iteration(s)"
    assert [r.id for r in result.records if r.task == "review"] == ["improve/1/review", "improve/2/review"]


async def test_a_loop_stops_at_its_bound_and_says_so() -> None:
    flow, seen = optimizer([1, 2, 3, 9])
    result = await flow.run(spec="fib")
    assert len(seen) == 3 and len(result.attempts["improve"]) == 3 and result.output == "v3 of fib (3)"
    assert "max_iterations=3 (until was not met)" in next(r for r in result.records if r.task == "improve").detail


def test_a_loop_back_edge_needs_a_default_and_a_body_one_end() -> None:
    @step
    def draft(critique: str) -> str:
        return critique

    @step
    def critique(draft: str) -> str:
        return draft

    with pytest.raises(ConfigError, match=r"'draft' takes 'critique' from the previous iteration.*default"):
        Workflow(loop(draft >> critique))

    a, b = blank("a"), blank("b")

    with pytest.raises(ConfigError, match=r"the body of loop 'loop' ends in 2 tasks \(a, b\)"):
        Workflow(loop(a | b))


# -- runs: failures, retries, limits, events, usage -------------------------------------------------

async def test_a_failing_task_fails_the_run_naming_it_and_its_inputs_and_keeps_the_rest() -> None:
    log: list[tuple[str, float, float]] = []

    @step
    def fragile(person: str) -> str:
        raise RuntimeError("the API is down")

    flow = Workflow(fragile("Ann") | timed("slow", 0.1, log))
    with pytest.raises(WorkflowError) as err:
        await flow.run()
    message = str(err.value)
    assert "task 'fragile' failed: RuntimeError: the API is down" in message and "person=Ann" in message
    assert err.value.task == "fragile" and err.value.result.outputs == {"slow": "slow"}  # the sibling finished


async def test_retries_rerun_a_failed_task_and_count_its_tries() -> None:
    calls: list[int] = []

    @step(retries=2)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("try again")
        return "ok"

    result = await Workflow(flaky, retry_delay=0).run()
    assert result.output == "ok" and result.records[-1].tries == 3
    calls.clear()
    once = step(retries=1, name="once")(flaky.fn)
    with pytest.raises(WorkflowError, match="task 'once' failed after 2 tries: TimeoutError: try again"):
        await Workflow(once, retry_delay=0).run()
    assert len(calls) == 2


async def test_a_budget_bounds_the_whole_workflow() -> None:
    model = ScriptedModel(["Frodo", "line"])
    with pytest.raises(WorkflowError, match="max_steps"):
        await Workflow(character >> line, model=model, limits=Limits(max_steps=1)).run()
    assert len(model.requests) == 1


async def test_events_usage_and_step_names() -> None:
    runner = StepNames()
    model = ScriptedModel(["Sam", "Po-tay-toes"])
    stream = Workflow(character >> line >> step(lambda line: line.upper()), model=model, name="lotr",
                      runner=runner).stream()
    events = [e async for e in stream]
    kinds = [(type(e).__name__, getattr(e, "id", "")) for e in events]
    assert kinds[0][0] == "RunStarted" and kinds[-1][0] == "RunFinished"
    assert ("TaskStarted", "character") in kinds and kinds.index(("TaskFinished", "character")) < kinds.index(
        ("TaskStarted", "line"))
    steps = [e for e in events if isinstance(e, ModelStep)]
    assert [s.agent for s in steps] == ["lotr/character", "lotr/line"]
    assert runner.names == ["lotr/character/model/0", "lotr/line/model/0", "lotr/<lambda>/python"]
    result = stream.result
    assert result.output == "PO-TAY-TOES"
    assert result.usage.requests == 2 and result.usage == result.usage_by_task["character"] + result.usage_by_task[
        "line"] + result.usage_by_task["<lambda>"]
    finished = [e for e in events if isinstance(e, TaskFinished)]
    assert all(e.status == "done" for e in finished) and isinstance(events[-1], RunFinished)
    assert [e.output for e in finished] == ["Sam", "Po-tay-toes", "PO-TAY-TOES"]
    assert isinstance(events[1], TaskStarted)


async def test_agents_are_tasks_and_a_stopped_agent_fails_its_task() -> None:
    writer = Agent("writer", "You write.", model=ScriptedModel([call("finish", answer="Dear Dana, ...")]))
    flow = Workflow(task(writer, "Write to {owner} about {idea}"))
    assert set(flow.inputs) == {"owner", "idea"}
    result = await flow.run(owner="Dana", idea="socks")
    assert result.output == "Dear Dana, ..." and result.usage.requests == 1
    assert writer.model.requests[0].messages[-1].content == "Write to Dana about socks"  # type: ignore[attr-defined]
    stuck = Agent("stuck", model=ScriptedModel(["thinking", "still thinking"]), max_steps=2)
    with pytest.raises(WorkflowError, match=r"agent 'stuck' stopped: max_steps"):
        await Workflow(task(stuck)).run(task="x")


async def test_a_workflow_is_a_task_of_another_and_a_worker_of_each() -> None:
    @step
    def summarize(store: str) -> str:
        return f"{store} sells socks"

    @step
    def pitch(summarize: str) -> str:
        return f"pitch: {summarize}"

    per_store = Workflow(summarize >> pitch, name="promote")
    assert set(per_store.inputs) == {"store"}
    flow = Workflow(each(per_store, over="stores"))
    result = await flow.run(stores=["A", "B"])
    assert result.output == ["pitch: A sells socks", "pitch: B sells socks"]
    assert {r.id for r in result.records} >= {"promote[0]/summarize", "promote[1]/pitch", "promote[1]"}


# -- typed state ----------------------------------------------------------------------------------

@dataclass
class ChainState:
    topic: str = ""
    outline: str = ""
    draft: str = ""
    should_continue: bool = True


async def test_the_typed_state_style_runs_steps_in_order_and_ends_early() -> None:
    async def create_outline(state: ChainState) -> ChainState:
        state.outline = f"outline of {state.topic}"
        state.should_continue = state.topic != "stop"
        return state

    async def write_draft(state: ChainState) -> ChainState:
        state.draft = f"draft from {state.outline}"
        return state

    flow = Workflow[ChainState](create_outline, write_draft)
    result = await flow.run(ChainState(topic="agents"))
    assert result.output.draft == "draft from outline of agents"
    stopped = await flow.run(ChainState(topic="stop"))
    assert stopped.output.draft == "" and stopped.stopped_by == "create_outline"
    assert [(r.task, r.status) for r in stopped.records] == [("create_outline", "done"), ("write_draft", "skipped")]


# -- human edits ----------------------------------------------------------------------------------

async def test_rerun_after_an_edit_reruns_only_the_descendants() -> None:
    model = FunctionModel(towns)
    flow = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, model=model)
    first = await flow.run()
    edited = await flow.rerun(first, {"home_town~2": HomeTownInfo(person_name="Elon Musk", home_town="New York")})
    assert edited.output == "far: The distance between Edinburgh and New York"
    assert {r.task: r.status for r in edited.records} == {"home_town": "reused", "home_town~2": "edited",
                                                          "distance": "done"}
    assert len(model.requests) == 4  # 3 in the first run, only distance again
    with pytest.raises(ConfigError, match="'nope' is not a task"):
        await flow.rerun(first, {"nope": 1})


# -- drawings -------------------------------------------------------------------------------------

def test_mermaid_and_dot_draw_tasks_routes_loops_and_fan_outs() -> None:
    flow, _ = optimizer([9])
    support = Workflow(route(classify, {k: answer_as(k) for k in ("technical", "billing", "general")}))
    fan = Workflow(decompose >> each(research, over="decompose.subtasks") >> synthesize)
    chart = flow.to_mermaid() + support.to_mermaid() + fan.to_mermaid()
    assert chart.startswith("flowchart TD")
    assert 'subgraph n2["loop improve (at most 3)"]' in flow.to_mermaid()
    assert "-. again .->" in flow.to_mermaid()
    assert '{"classify"}' not in support.to_mermaid() and '["classify"]' in support.to_mermaid()
    assert "-->|billing|" in support.to_mermaid() and '{"route"}' in support.to_mermaid()
    assert 'each research: for every item of decompose.subtasks' in fan.to_mermaid()
    dot = support.to_dot()
    assert dot.startswith('digraph "workflow" {') and "shape=diamond" in dot and 'label="billing"' in dot
    assert "subgraph cluster_" in fan.to_dot() and dot.rstrip().endswith("}")


async def test_a_task_awaited_inside_a_step_uses_the_workflows_model_and_counts_towards_the_step() -> None:
    @step
    async def famous(who: str) -> str:
        return (await line(character=who)).upper()

    model = ScriptedModel(["my precious"])
    result = await Workflow(famous, model=model).run(who="Gollum")
    assert result.output == "MY PRECIOUS"
    assert model.requests[0].messages[-1].content == "What is a famous line by Gollum?"
    assert result.usage.requests == 1 and result.usage_by_task["famous"].requests == 1


async def test_a_supervisor_is_a_task_and_dapr_style_sync_tasks_work() -> None:
    from agentflow import Supervisor

    @task("""
        Pick a random character from The Lord of the Rings
        and respond with the character's name only
    """)
    def get_character() -> str:
        pass

    writer = Agent("writer", "You write.", model=ScriptedModel([call("finish", answer="A line for Frodo")]))
    boss = Supervisor([writer], model=ScriptedModel([call("writer", task="a line for Frodo"), "Frodo says hi"]))
    flow = Workflow(get_character >> task(boss, "Have a famous line written for {get_character}"),
                    model=ScriptedModel(["Frodo"]))
    result = await flow.run()
    assert result.output == "Frodo says hi"
    assert result.usage.requests == 4  # the character, the supervisor's two turns, the writer
    assert boss.router.model.requests[0].messages[-1].content == "Have a famous line written for Frodo"  # type: ignore
    assert flow.graph.nodes["get_character"].unit.prompt.startswith("Pick a random character from The Lord of the "
                                                                    "Rings\nand respond")  # type: ignore


async def test_use_model_serves_tasks_awaited_directly_and_output_keeps_typed_opsmate_tasks_honest() -> None:
    @task(output=HomeTownInfo)
    async def town(person_name: str) -> str:
        """Return the home town of the person."""
        return f"Person: {person_name}"

    with use_model(FunctionModel(lambda info: call("finish", person_name="Ann", home_town="Leeds"))) as model:
        found = await town("Ann")
    assert found == HomeTownInfo(person_name="Ann", home_town="Leeds")
    assert model.requests[0].messages[-1].content == "Person: Ann"  # type: ignore[attr-defined]


async def test_workflow_settings_lie_under_each_tasks_own() -> None:
    @task("Say {x}", settings=ModelSettings(temperature=0.5))
    async def say(x: str) -> str: ...

    model = ScriptedModel(["a", "b"])
    await Workflow(say("1") | line("Sam"), model=model, settings=ModelSettings(max_tokens=64, temperature=0)).run()
    by_prompt = {r.messages[-1].content: r.settings for r in model.requests}
    assert by_prompt["Say 1"].max_tokens == 64 and by_prompt["Say 1"].temperature == 0.5
    assert by_prompt["What is a famous line by Sam?"].temperature == 0


async def test_rerun_checks_an_edit_against_the_tasks_output_type() -> None:
    flow = Workflow((home_town("Tony Blair") | home_town("Elon Musk")) >> distance, model=FunctionModel(towns))
    first = await flow.run()
    edited = await flow.rerun(first, {"home_town~2": {"person_name": "Elon Musk", "home_town": "New York"}})
    assert edited["home_town~2"] == HomeTownInfo(person_name="Elon Musk", home_town="New York")
    with pytest.raises(ConfigError, match=r"new output of 'home_town~2' is not a valid HomeTownInfo"):
        await flow.rerun(first, {"home_town~2": {"person_name": "Elon Musk"}})


async def test_nested_fan_outs_count_each_call_once() -> None:
    @step
    def items() -> list[str]:
        return ["a", "b"]

    @task("Say {item}")
    async def say(item: str) -> str: ...

    result = await Workflow(items >> each(Workflow(say, name="inner"), over="items"),
                            model=FunctionModel(lambda info: "ok")).run()
    assert result.usage.requests == 2 and result.usage_by_task["inner"].requests == 2
    assert result.usage_by_task["say"].requests == 2


async def test_a_loop_over_a_typed_state_carries_the_state_from_one_iteration_to_the_next() -> None:
    class Counter(BaseModel):
        n: int = 0
        should_continue: bool = True

    @step
    async def bump(state: Counter) -> Counter:
        return state.model_copy(update={"n": state.n + 1})

    def check(state: Counter) -> Counter:
        return state.model_copy(update={"should_continue": state.n < 3})

    result = await Workflow[Counter](loop(bump >> check, max_iterations=5, name="count")).run(Counter())
    assert result.output.n == 3 and [a["check"].n for a in result.attempts["count"]] == [1, 2, 3]


async def test_workflow_settings_reach_tasks_awaited_inside_a_step() -> None:
    @step
    async def ask() -> str:
        return await line(character="Pippin")

    model = ScriptedModel(["a second breakfast"])
    await Workflow(ask, model=model, settings=ModelSettings(max_tokens=7)).run()
    assert model.requests[0].settings.max_tokens == 7
