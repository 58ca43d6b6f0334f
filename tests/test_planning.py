"""Plan-then-execute: typed plans, concurrent independent steps, reviews, edits, failures, limits."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import (
    ConfigError,
    FunctionModel,
    Limits,
    Plan,
    PlanMade,
    PlanStep,
    PlanStepChanged,
    ScriptedModel,
    Supervisor,
)
from agentflow.models.scripted import RequestInfo, call
from tests.helpers import Crew


def step(id: str, task: str, agent: str, needs: list[str] | None = None) -> dict[str, Any]:
    return {"id": id, "task": task, "agent": agent, "needs": needs or []}


def plan_call(*steps: dict[str, Any], goal: str = "g") -> Any:
    return call("finish", goal=goal, steps=list(steps))


def keep() -> Any:
    return call("finish", decision="keep", reason="fine", steps=None)


async def test_independent_steps_run_together_and_a_dependent_step_gets_their_results() -> None:
    crew = Crew(delay=0.05)
    brain = ScriptedModel([
        plan_call(step("a", "count file A", "counter"), step("b", "count file B", "counter"),
                  step("sum", "add the counts", "adder", ["a", "b"])),
        keep(),  # after a and b (one review: both finished together, sum not started)
        "Total counted.",
    ])
    sup = Supervisor([crew.agent("counter"), crew.agent("adder")], model=brain, mode="plan")
    result = await sup.run("Count the lines of the notebooks")
    assert result.ok and result.output == "Total counted."
    assert crew.peak == 2  # a and b overlapped
    assert crew.started[-1] == "adder:add the counts"
    assert '"a":"counter did count file A"' in crew.tasks["adder"][0]
    assert '"b":"counter did count file B"' in crew.tasks["adder"][0]
    assert sorted(c.agent for c in result.children) == ["supervisor/adder", "supervisor/counter",
                                                        "supervisor/counter"]
    planning = brain.requests[0]
    assert planning.tool_names == ["finish"]
    agent_enum = planning.tools[0].parameters["$defs"]["PlanStep"]["properties"]["agent"]["enum"]
    assert agent_enum == ["counter", "adder"]
    assert "new_agent" not in planning.tools[0].parameters["$defs"]["PlanStep"]["properties"]
    answer = brain.requests[-1]
    assert "Step sum (adder) finished: adder did add the counts" in (answer.last.content or "")
    assert answer.tool_names == []  # a str answer ends with text: no finish schema to pay for
    assert result.usage.requests == 3 + 3


async def test_a_review_can_revise_the_steps_not_started() -> None:
    crew = Crew()
    brain = ScriptedModel([
        plan_call(step("s1", "look around", "scout"), step("s2", "old idea", "worker", ["s1"])),
        call("finish", decision="revise", reason="s1 found something better",
             steps=[step("s3", "better idea", "worker", ["s1"])]),
        "Done better.",
    ])
    events: list[Any] = []
    sup = Supervisor([crew.agent("scout"), crew.agent("worker")], model=brain, mode="plan")
    stream = sup.stream("go")
    async for e in stream:
        events.append(e)
    assert stream.result.output == "Done better."
    assert crew.started == ["scout:look around", "worker:better idea"]
    plans = [e for e in events if isinstance(e, PlanMade)]
    assert [p.revision for p in plans] == [0, 1] and plans[1].reason == "s1 found something better"
    assert [s.id for s in plans[1].plan.steps] == ["s3"]
    changes = [(e.step, e.status) for e in events if isinstance(e, PlanStepChanged)]
    assert changes == [("s1", "started"), ("s1", "done"), ("s3", "started"), ("s3", "done")]


async def test_the_plan_can_be_inspected_and_edited_before_it_runs() -> None:
    crew = Crew()
    brain = ScriptedModel([plan_call(step("s1", "send 1000 emails", "mailer")), "ok"])

    def edit(plan: Plan) -> Plan:
        assert plan.steps[0].task == "send 1000 emails"
        return Plan(goal=plan.goal, steps=[PlanStep(id="s1", task="send 1 test email", agent="mailer")])

    sup = Supervisor([crew.agent("mailer")], model=brain, mode="plan", on_plan=edit)
    assert (await sup.run("email everyone")).output == "ok"
    assert crew.started == ["mailer:send 1 test email"]


async def test_plan_then_run_the_edited_plan() -> None:
    crew = Crew()
    brain = ScriptedModel([plan_call(step("s1", "draft", "writer")), "final"])
    sup = Supervisor([crew.agent("writer")], model=brain, mode="plan")
    plan = await sup.plan("write it")
    plan.steps[0].task = "draft, in French"
    result = await sup.run("write it", plan=plan)
    assert result.output == "final" and crew.started == ["writer:draft, in French"]
    assert "The plan, given:" in (brain.requests[1].messages[1].content or "")


async def test_an_invalid_edit_is_a_clear_error() -> None:
    brain = ScriptedModel([plan_call(step("s1", "x", "writer"))])
    bad = Plan(goal="g", steps=[PlanStep(id="s1", task="x", agent="nobody")])
    sup = Supervisor([Crew().agent("writer")], model=brain, mode="plan", on_plan=lambda p: bad)
    with pytest.raises(ConfigError, match="on_plan is not valid: step s1: there is no agent 'nobody'"):
        await sup.run("go")


async def test_an_invalid_plan_goes_back_to_the_model() -> None:
    crew = Crew()
    brain = ScriptedModel([
        plan_call(step("a", "x", "worker", ["b"]), step("b", "y", "worker", ["a"])),
        plan_call(step("a", "x", "worker"), step("b", "y", "worker", ["a"])),
        keep(),
        "ok",
    ])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="plan").run("go")
    assert result.output == "ok"
    feedback = brain.requests[1].last.content or ""
    assert "dependencies form a cycle" in feedback and "a -> b -> a" in feedback
    assert crew.started == ["worker:x", "worker:y"]


async def test_a_failed_step_forces_a_review_which_may_abandon() -> None:
    crew = Crew()
    broken = ScriptedModel(["I refuse"] * 3)
    from agentflow import Agent

    flaky = Agent("flaky", "f", model=broken, max_steps=2)
    brain = ScriptedModel([
        plan_call(step("s1", "do it", "flaky"), step("s2", "then this", "worker", ["s1"])),
        call("finish", decision="abandon", reason="s1 cannot be done", steps=None),
        "Sorry, it could not be done.",
    ])
    sup = Supervisor([flaky, crew.agent("worker")], model=brain, mode="plan", replan="on_failure")
    result = await sup.run("go")
    assert result.output == "Sorry, it could not be done."
    review = brain.requests[1].last.content or ""
    assert "Step s1 (flaky) failed: flaky stopped before finishing the task (max_steps" in review
    assert crew.started == []
    assert "Steps that did not run: s2." in (brain.requests[2].last.content or "")


async def test_replan_never_skips_reviews() -> None:
    crew = Crew()
    brain = ScriptedModel([plan_call(step("s1", "a", "w"), step("s2", "b", "w", ["s1"])), "done"])
    result = await Supervisor([crew.agent("w")], model=brain, mode="plan", replan="never").run("go")
    assert result.output == "done" and len(brain.requests) == 2


async def test_an_empty_plan_means_the_supervisor_answers_itself() -> None:
    brain = ScriptedModel([plan_call(), "Hello!"])
    result = await Supervisor([Crew().agent("w")], model=brain, mode="plan").run("hi")
    assert result.output == "Hello!" and result.children == []


async def test_a_tree_budget_ends_a_plan_run_with_its_history() -> None:
    crew = Crew()
    brain = ScriptedModel([plan_call(step("s1", "a", "w"), step("s2", "b", "w", ["s1"])), keep(), "never"])
    sup = Supervisor([crew.agent("w")], model=brain, mode="plan", limits=Limits(max_steps=2))
    result = await sup.run("go")
    assert result.stop_reason == "max_steps" and result.output is None
    assert result.usage.requests == 2 and len(result.children) == 1
    assert result.steps and result.messages


async def test_repeating_a_failed_step_forever_is_stopped_by_the_loop_guard() -> None:
    from agentflow import Agent

    flaky = Agent("flaky", "f", model=FunctionModel(lambda info: "no"), max_steps=1)
    retry = call("finish", decision="revise", reason="try again", steps=None)

    def brain_reply(info: RequestInfo) -> Any:
        n = len(brain.requests)
        if n == 1:
            return plan_call(step("s1", "same job", "flaky"))
        return call("finish", decision="revise", reason="again",
                    steps=[step(f"r{n}", "same job", "flaky")]) if retry else "x"

    brain = FunctionModel(brain_reply)
    result = await Supervisor([flaky], model=brain, mode="plan").run("go")
    assert result.stop_reason == "loop"
    assert "delegated to flaky again after being refused" in result.detail
    assert len(result.children) == 2  # the first try and one retry; then refusals


async def test_a_plan_may_make_agents_on_the_fly() -> None:
    from agentflow import tool

    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    spawned = ScriptedModel([call("shout", text="hi"), call("finish", answer="HI")])
    new = {"name": "shouter", "instructions": "Shout.", "tools": ["shout"], "output": "text"}
    brain = ScriptedModel([plan_call({**step("s1", "shout hi", "new"), "new_agent": new}), "HI it is"])
    sup = Supervisor([], model=brain, mode="plan", library=[shout])
    sup.factory.model = spawned  # type: ignore[union-attr]
    result = await sup.run("shout hi")
    assert result.output == "HI it is"
    assert result.children[0].agent == "supervisor/shouter" and result.children[0].output == "HI"


async def test_an_invalid_given_plan_is_a_clear_error() -> None:
    sup = Supervisor([Crew().agent("w")], model=ScriptedModel([]), mode="plan")
    bad = Plan(goal="g", steps=[PlanStep(id="a", task="x", agent="w", needs=["zzz"])])
    with pytest.raises(ConfigError, match="plan given to run\\(\\) is not valid: step 'a' depends on 'zzz'"):
        await sup.run("go", plan=bad)
