"""The worklist: priorities, a scheduler with a concurrency limit, results that arrive by themselves,
reprioritisation, cancellation, dependency cycles, agents made on the fly, bounds and the loop guard."""

from __future__ import annotations

from typing import Any

from agentflow import Agent, FunctionModel, ScriptedModel, Supervisor, ToolStep, WorklistChanged, tool
from agentflow.models.scripted import RequestInfo, call
from tests.helpers import Crew, StepNames


def add(id: str, description: str, agent: str = "worker", priority: int = 0, depends_on: list[str] | None = None,
        **extra: Any) -> Any:
    return call("add_task", id=id, description=description, agent=agent, priority=priority,
                depends_on=depends_on or [], **extra)


async def run_collecting(sup: Supervisor[Any], task: str) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    stream = sup.stream(task)
    async for e in stream:
        events.append(e)
    return stream.result, events


async def test_tasks_run_by_priority_within_the_concurrency_limit_and_results_arrive_by_themselves() -> None:
    crew = Crew(delay=0.02)
    brain = ScriptedModel([
        [add("low", "low job", priority=1), add("mid", "mid job", priority=2), add("high", "high job", priority=3)],
        "waiting",  # results come without asking; a text reply while tasks are open is not the answer
        "still waiting",
        "All three jobs are done.",
    ])
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", concurrency=1)
    result, events = await run_collecting(sup, "do the jobs")
    assert result.ok and result.output == "All three jobs are done."
    assert crew.started == ["worker:high job", "worker:mid job", "worker:low job"]
    assert crew.peak == 1
    seen = "\n".join(m.content or "" for m in brain.requests[-1].messages)
    for job in ("high", "mid", "low"):
        assert f"Task {job} (worker) done: worker did {job} job" in seen
    assert "still open" in seen  # the early text reply was refused, not taken as the answer
    changes = [(e.change, e.item.id) for e in events if isinstance(e, WorklistChanged)]
    assert changes[:4] == [("added", "low"), ("added", "mid"), ("added", "high"), ("started", "high")]
    assert ("done", "low") in changes and len(result.children) == 3


async def test_concurrency_limit_is_reached_but_not_passed() -> None:
    crew = Crew(delay=0.03)
    brain = ScriptedModel([[add(f"t{i}", f"job {i}") for i in range(6)]] + ["done"] * 6)
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", concurrency=3)
    result = await sup.run("go")
    assert result.output == "done" and crew.peak == 3 and len(crew.started) == 6


async def test_reprioritize_changes_what_starts_next() -> None:
    crew = Crew(delay=0.02)
    brain = ScriptedModel([
        [add("a", "job a", priority=1), add("b", "job b", priority=2), add("c", "job c", priority=3),
         add("d", "job d", priority=4)],
        call("reprioritize", id="a", priority=10),  # after d's result; c started by itself meanwhile
        "done", "done", "done", "done",
    ])
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", concurrency=1)
    result, events = await run_collecting(sup, "go")
    assert crew.started == ["worker:job d", "worker:job c", "worker:job a", "worker:job b"]
    assert ("reprioritized", "a", 10) in [(e.change, e.item.id, e.item.priority) for e in events
                                          if isinstance(e, WorklistChanged)]
    assert result.output == "done"


async def test_cancel_a_pending_and_a_running_task_and_block_what_depended_on_it() -> None:
    crew = Crew(delays={"slow job": 5, "fast job": 0.01})
    brain = ScriptedModel([
        [add("slow", "slow job", priority=2), add("fast", "fast job", priority=1),
         add("later", "never", depends_on=["slow"]), add("after", "needs slow", depends_on=["slow"])],
        [call("cancel_task", id="later", reason="not needed"), call("cancel_task", id="slow", reason="too slow")],
        "Cancelled what was not needed.",
    ])
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", concurrency=2)
    result, events = await run_collecting(sup, "go")
    assert result.output == "Cancelled what was not needed."
    assert crew.started == ["worker:slow job", "worker:fast job"]
    statuses = {e.item.id: e.change for e in events if isinstance(e, WorklistChanged)}
    assert statuses == {"slow": "cancelled", "fast": "done", "later": "cancelled", "after": "blocked"}
    last = brain.requests[-1].last.content or ""
    assert "Task after (worker) blocked: depends on slow, which did not finish" in last
    assert sorted(c.stop_reason for c in result.children) == ["cancelled", "finish"]  # partial work is kept


async def test_finish_is_refused_while_tasks_are_open() -> None:
    crew = Crew(delays={"slow": 0.2, "fast": 0.01})
    brain = ScriptedModel([[add("s", "slow"), add("f", "fast")], call("finish", answer="too early"),
                           call("finish", answer="now: the worker did both")])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist", output=str).run("go")
    assert result.output == "now: the worker did both"
    refusal = next(s for s in result.steps if isinstance(s, ToolStep) and s.error == "rejected")
    assert refusal.observation.startswith("Tasks s are still open; their results will come to you by themselves")


async def test_an_answer_that_leaves_out_a_tasks_result_goes_back_once() -> None:
    """The 1.5B, with 100 and Rome in its results, answered 'The capital of Italy is Rome.'"""
    def reply(info: RequestInfo) -> Any:
        return call("finish", answer={"Calculate 25*4": "100", "Find the capital of Italy": "Rome"}[info.last.content])

    workers = [Agent(n, model=FunctionModel(reply), description=n) for n in ("math", "lookup")]
    brain = ScriptedModel([[add("calc", "Calculate 25*4", "math"), add("city", "Find the capital of Italy", "lookup")],
                           call("finish", answer="The capital of Italy is Rome."),
                           call("finish", answer="25*4 is 100, and the capital of Italy is Rome.")])
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "What is 25*4, and what is the capital of Italy?")
    assert result.output == "25*4 is 100, and the capital of Italy is Rome."
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert refused.observation.startswith("Not done: your answer leaves out the result of task calc (100).")


async def test_a_result_is_looked_for_as_whole_words_of_the_answer() -> None:
    """The 1.5B answered 'The weather in Oslo is -3C with snow.' with Lima's 19C in its results; the letter C of
    '19C' was found inside '-3C', so the answer seemed to show that result."""
    answers = {"Look up the weather in Oslo": "The weather in Oslo is -3C with snow.",
               "Look up the weather in Lima": "The weather in Lima is 19C and it is cloudy."}
    worker = Agent("lookup", model=FunctionModel(lambda info: call("finish", answer=answers[info.last.content or ""])),
                   description="lookup")
    brain = ScriptedModel([[add("oslo", "Look up the weather in Oslo", "lookup"),
                            add("lima", "Look up the weather in Lima", "lookup")],
                           call("finish", answer="The weather in Oslo is -3C with snow."),
                           call("finish", answer="Oslo: -3C with snow. Lima: 19C and cloudy.")])
    result = await Supervisor([worker], model=brain, mode="worklist", output=str).run(
        "What is the weather in Oslo, and what is the weather in Lima?")
    assert result.output == "Oslo: -3C with snow. Lima: 19C and cloudy."
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert refused.observation.startswith("Not done: your answer leaves out the result of task lima (The weather "
                                          "in Lima is 19C and it is cloudy.).")


async def test_a_dependency_cycle_is_refused_naming_it() -> None:
    crew = Crew()
    brain = ScriptedModel([
        [add("t1", "first", depends_on=["t2"]), add("t2", "second", depends_on=["t1"])],
        call("cancel_task", id="t1", reason="fix"),
        "fixed",
    ])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run("go")
    refused = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "failed"]
    assert len(refused) == 1
    assert "task 't2' was not added" in refused[0].observation
    assert "cycle (each is needed by the next): t1 -> t2 -> t1" in refused[0].observation
    assert crew.started == []


async def test_dependencies_pass_results_and_context_down() -> None:
    crew = Crew()
    brain = ScriptedModel([
        [add("html", "fetch the storefront"), add("idea", "invent a plug-in", depends_on=["html"],
                                                   context="The shop sells socks.")],
        "wait", "done",
    ])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run("go")
    assert result.output == "done"
    idea_task = crew.tasks["worker"][1]
    assert idea_task.startswith("invent a plug-in\n\nContext:\n")
    assert '"notes":"The shop sells socks."' in idea_task and '"html":"worker did fetch the storefront"' in idea_task


async def test_tasks_for_agents_made_on_the_fly() -> None:
    @tool
    def browse(url: str) -> str:
        """Fetch a page."""
        return "<html>socks</html>"

    spawned = ScriptedModel([call("browse", url="x"), call("finish", answer="sells socks")])
    spec = {"name": "browser", "instructions": "Browse.", "tools": ["browse"], "output": "text"}
    brain = ScriptedModel([add("look", "look at x", agent="new", new_agent=spec), "x sells socks"])
    sup = Supervisor([], model=brain, mode="worklist", library=[browse])
    sup.factory.model = spawned  # type: ignore[union-attr]
    result = await sup.run("what does x sell?")
    assert result.output == "x sells socks"
    assert result.children[0].agent == "supervisor/browser" and result.children[0].output == "sells socks"
    assert spawned.requests[0].tool_names == ["browse", "finish"]


async def test_unknown_agent_full_list_and_duplicate_ids_are_refused() -> None:
    crew = Crew()
    brain = ScriptedModel([
        [add("a", "x"), add("a", "y"), add("b", "z", agent="nobody"), add("c", "w")],
        "wait", "done",
    ])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist", max_tasks=1).run("go")
    observations = [s.observation for s in result.steps if isinstance(s, ToolStep)]
    assert observations[0] == "Added task a."
    assert "already a task 'a'" in observations[1]
    assert "agent: Input should be 'worker' (got 'nobody')" in observations[2]
    assert "worklist is full (max_tasks=1)" in observations[3]


async def test_the_same_task_again_is_refused_then_the_run_stops() -> None:
    crew = Crew()
    brain = ScriptedModel([add("t1", "same"), add("t2", "Same "), add("t3", "same"), "unreached"])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run("go")
    assert result.stop_reason == "loop" and crew.started == ["worker:same"]
    # Added again once it is done, the task is refused with its result; added a third time, the run stops.
    refused = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "repeated"]
    assert len(refused) == 1 and refused[0].observation.startswith("task 't1' already did this, and its result is")
    assert "added for worker again after being refused: 'same'" in result.detail


async def test_a_text_answer_with_nothing_open_ends_at_once() -> None:
    result = await Supervisor([Crew().agent("worker")], model=ScriptedModel(["Hi!"]), mode="worklist").run("hi")
    assert result.output == "Hi!" and result.usage.requests == 1


async def test_the_time_limit_ends_a_run_waiting_on_tasks() -> None:
    from agentflow import Limits

    crew = Crew(delay=5)
    brain = ScriptedModel([add("t", "forever")])
    sup = Supervisor([crew.agent("worker")], model=brain, mode="worklist", limits=Limits(max_seconds=0.1))
    result = await sup.run("go")
    assert result.stop_reason == "max_time"


async def test_worklist_tools_are_not_journaled_as_steps() -> None:
    runner = StepNames()
    crew = Crew()
    brain = FunctionModel(lambda info: add("t", "job") if len(info.messages) == 2 else "done")
    await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run("go", runner=runner)
    assert runner.names == ["supervisor/worklist/model/0", "supervisor/task/t/worker/model/0",
                            "supervisor/worklist/model/2"]


async def test_a_task_may_depend_on_one_added_later_in_the_same_turn_but_not_on_one_never_added() -> None:
    crew = Crew()
    brain = ScriptedModel([
        [add("report", "write the report", depends_on=["data"]), add("data", "gather data"),
         add("orphan", "x", depends_on=["ghost"])],
        "done", "done", "done",  # the blocked task is reported at once, then each result
    ])
    result, events = await run_collecting(Supervisor([crew.agent("worker")], model=brain, mode="worklist"), "go")
    assert crew.started == ["worker:gather data", "worker:write the report"]
    assert ("blocked", "orphan") in [(e.change, e.item.id) for e in events if isinstance(e, WorklistChanged)]
    assert result.output == "done"


async def test_a_task_that_restates_an_agents_description_is_refused() -> None:
    crew = Crew()
    brain = ScriptedModel([add("t1", "Count the words in a text, or reverse a string"),
                           add("t2", "Count the words in 'a b c'"), "wait", "It has 3 words."])
    worker = crew.agent("worker", description="Counts the words in a text, or reverses a string.")
    result = await Supervisor([worker], model=brain, mode="worklist").run("How many words in 'a b c'?")
    observations = [s.observation for s in result.steps if isinstance(s, ToolStep)]
    assert "that is what agent 'worker' can do, not a task for it" in observations[0]
    assert observations[1] == "Added task t2." and crew.started == ["worker:Count the words in 'a b c'"]


async def test_an_answer_with_a_number_no_result_holds_goes_back_once() -> None:
    """The 1.5B answered 'the number of words ... is 8' with 4 in its results, told twice that it was 4."""
    counter = Agent("counter", model=FunctionModel(lambda info: call("finish", answer="4")), description="counts")
    brain = ScriptedModel([add("c", "Count the words in 'the quick brown fox'", "counter"),
                           call("finish", answer="The number of words is 8."),
                           call("finish", answer="The number of words is 8.")])
    result = await Supervisor([counter], model=brain, mode="worklist", output=str).run(
        "How many words are in 'the quick brown fox'?")
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert "Also: Not done: '8' is in no result and not in the request." in refused.observation
    # asked once; the answer written afresh from the results failed too (the script had none): the second stands
    assert result.output == "The number of words is 8."
    brain = ScriptedModel([add("c", "Count the words in 'the quick brown fox'", "counter"),
                           call("finish", answer="There are 4 words in 1 sentence.")])
    result = await Supervisor([counter], model=brain, mode="worklist", output=str).run(
        "How many words are in the 1 sentence 'the quick brown fox'?")
    assert result.output == "There are 4 words in 1 sentence."  # numbers from a result and from the request stand


async def test_with_every_task_done_a_copied_description_points_at_the_results() -> None:
    crew = Crew()
    brain = ScriptedModel([add("t1", "Count the words in 'a b c'"), add("t2", "Counts the words in a text."),
                           "It has 3 words."])
    worker = crew.agent("worker", description="Counts the words in a text.")
    result = await Supervisor([worker], model=brain, mode="worklist").run("How many words in 'a b c'?")
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "repeated"]
    assert refused.observation.startswith("that is what agent 'worker' can do, not a task for it.")
    assert "The results so far are t1: " in refused.observation and "finish with the answer" in refused.observation
    assert result.output == "It has 3 words." and len(crew.started) == 1


def composing(script: list[Any], seen: list[list[Any]]) -> FunctionModel:
    """The supervisor's model: `script` in order; what each call was sent is kept in `seen`."""
    def reply(info: RequestInfo) -> Any:
        seen.append(list(info.messages))
        return script[len(seen) - 1]

    return FunctionModel(reply)


async def test_an_answer_that_leaves_out_a_result_twice_is_written_again_from_the_results_alone() -> None:
    """The 1.5B, told its answer left out 100, answered 'The capital of Italy is Rome.' again."""
    def reply(info: RequestInfo) -> Any:
        return call("finish", answer={"Calculate 25*4": "100", "Find the capital of Italy": "Rome"}[info.last.content])

    workers = [Agent(n, model=FunctionModel(reply), description=n) for n in ("math", "lookup")]
    seen: list[list[Any]] = []
    brain = composing([[add("calc", "Calculate 25*4", "math"), add("city", "Find the capital of Italy", "lookup")],
                       call("finish", answer="The capital of Italy is Rome."),
                       call("finish", answer="The capital of Italy is Rome."),
                       "25*4 = 100; the capital of Italy is Rome."], seen)
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "What is 25*4, and what is the capital of Italy?")
    assert result.ok and result.output == "25*4 = 100; the capital of Italy is Rome."
    fresh = seen[-1]  # the request and the results, none of the turns before
    assert [m.role for m in fresh] == ["system", "user"]
    assert fresh[1].content == ("Request: What is 25*4, and what is the capital of Italy?\nResults:\n"
                                "- Calculate 25*4: 100\n- Find the capital of Italy: Rome")
    assert result.usage.requests == len(seen) + 2  # the two task agents' calls, and every call of the supervisor


async def test_a_run_the_loop_guard_ended_with_every_task_done_gets_its_answer_from_the_results() -> None:
    crew = Crew()
    seen: list[list[Any]] = []
    brain = composing([add("t1", "Count the apples"), add("t2", "Count the apples"), add("t3", "Count the apples"),
                       "worker did Count the apples"], seen)
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run("How many apples?")
    assert result.ok and result.output == "worker did Count the apples"
    assert crew.started == ["worker:Count the apples"]  # the task ran once
    brain = composing([add("t1", "Count the apples"), add("t2", "Count the apples"), add("t3", "Count the apples"),
                       "7 apples"], [])
    result = await Supervisor([Crew().agent("worker")], model=brain, mode="worklist").run("How many apples?")
    assert result.stop_reason == "loop" and result.output is None  # '7' is in no result: the loop's end stands


async def test_the_answer_written_from_the_results_may_leave_out_a_task_that_answers_nothing() -> None:
    """The 1.5B added 'Get the capital city of Rome' to 'the weather in Rome, and 12*12', then re-added it until
    the loop guard stopped it; the answer written from the results, 'The weather in Rome is 24C and sunny, and
    12*12 is 144.', left that task's result out, rightly."""
    answers = {"Get the weather in Rome": "24C, sunny", "Get the capital city of Rome": "The capital city of Rome "
               "is Rome.", "Calculate 12*12": "144"}
    workers = [Agent(n, model=FunctionModel(lambda info: call("finish", answer=answers[info.last.content or ""])),
                     description=n) for n in ("lookup", "math")]
    brain = composing([[add("w", "Get the weather in Rome", "lookup"), add("m", "Calculate 12*12", "math"),
                        add("c", "Get the capital city of Rome", "lookup")],
                       add("c2", "Get the capital city of Rome", "lookup"), add("c3", "Get the capital city of Rome",
                                                                                 "lookup"),
                       "The weather in Rome is 24C and sunny, and 12*12 is 144."], [])
    result = await Supervisor(workers, model=brain, mode="worklist").run("What is the weather in Rome, and 12*12?")
    assert result.ok and result.output == "The weather in Rome is 24C and sunny, and 12*12 is 144."


def answering(answers: dict[str, str]) -> FunctionModel:
    """A task agent's model: the answer to each task (by its first line)."""
    return FunctionModel(lambda info: call("finish", answer=answers[(info.last.content or "").splitlines()[0]]))


async def test_a_dependency_that_carries_nothing_over_does_not_hide_a_result() -> None:
    """The 1.5B made its capital task depend on its 25*4 task, then answered 'The capital of Italy is Rome.'"""
    workers = [Agent("math", model=answering({"Calculate 25*4": "100"}), description="math"),
               Agent("lookup", model=answering({"Look up the capital of Italy": "Rome", "How many steps climb 100 m?":
                                                "100 m is about 550 steps"}), description="lookup")]
    brain = ScriptedModel([add("calc", "Calculate 25*4", "math"),
                           add("city", "Look up the capital of Italy", "lookup", depends_on=["calc"]),
                           call("finish", answer="The capital of Italy is Rome."),
                           call("finish", answer="25*4 is 100; the capital of Italy is Rome.")])
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "What is 25*4, and what is the capital of Italy?")
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert "leaves out the result of task calc (100)" in refused.observation
    # A dependency whose result the dependent task shows is on the way to the answer: exempt.
    brain = ScriptedModel([add("calc", "Calculate 25*4", "math"),
                           add("steps", "How many steps climb 100 m?", "lookup", depends_on=["calc"]),
                           call("finish", answer="About 550 steps.")])
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "How many steps climb 25*4 metres?")
    assert result.output == "About 550 steps." and not [s for s in result.steps if isinstance(s, ToolStep) and s.error]


async def test_a_task_that_names_nothing_of_the_request_is_refused() -> None:
    """Asked for the weather in Oslo and Lima, the 1.5B added 'Lookup the capital city of Norway'."""
    crew = Crew()
    brain = ScriptedModel([add("t1", "Lookup the capital city of Norway", "worker"),
                           [add("t2", "Get the weather in Oslo", "worker"), add("t3", "Get the weather in Lima")],
                           "Oslo and Lima: see the results."])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run(
        "What is the weather in Oslo, and what is the weather in Lima?")
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "failed"]
    assert refused.observation == (
        "task 't1' was not added: it names none of what the request names (Oslo, Lima). The agent sees only its "
        "task: write the part of the request that it answers, in the request's words. The request: 'What is the "
        "weather in Oslo, and what is the weather in Lima?'")
    assert crew.started == ["worker:Get the weather in Oslo", "worker:Get the weather in Lima"]
    # The 1.5B added the same task again: the second time the agent gets the request itself.
    crew = Crew()
    brain = ScriptedModel([add("t1", "Lookup the capital city of Norway"), add("t1", "Lookup the capital city of "
                                                                               "Norway"), "done"])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run(
        "What is the weather in Oslo, and what is the weather in Lima?")
    assert crew.started == ["worker:What is the weather in Oslo, and what is the weather in Lima?"]
    assert [s.observation for s in result.steps if isinstance(s, ToolStep)][1] == (
        "Added task t1. Its description named nothing of the request again, so it is the request itself.")
    # A task that builds on results, or on a dependency, or for a request that names nothing, is added.
    brain = ScriptedModel([add("t1", "Do the first job"), "done"])
    assert (await Supervisor([Crew().agent("worker")], model=brain, mode="worklist").run("do the jobs")).ok


async def test_a_part_of_the_request_no_task_covers_goes_back_once() -> None:
    """Asked to "reverse the string 'worklist', and compute 99 + 1", the 1.5B added the reversal only."""
    workers = [Agent("text", model=answering({"Reverse the string 'worklist'": "tsilkrow"}), description="text"),
               Agent("math", model=answering({"Compute 99 + 1": "100"}), description="math")]
    brain = ScriptedModel([add("r", "Reverse the string 'worklist'", "text"), call("finish", answer="tsilkrow"),
                           add("m", "Compute 99 + 1", "math"), call("finish", answer="tsilkrow, and 100")])
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "Reverse the string 'worklist', and compute 99 + 1.")
    assert result.output == "tsilkrow, and 100"
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert refused.observation == ("Not done: the request also names '99', '1', which no task and not your answer "
                                   "covers. Add a task for that part of the request, then answer every part.")


async def test_a_dependency_on_a_task_refused_as_a_repeat_is_on_the_task_it_repeats() -> None:
    """The 1.5B re-added its weather task as weather-2 (refused: weather-1 had done it) and, in the same turn,
    made its 12*12 task depend on weather-2, which was then blocked as depending on a task that never was."""
    crew = Crew()
    brain = ScriptedModel([add("weather-1", "Get the weather in Rome"),
                           [add("weather-2", "Get the weather in Rome"),
                            add("math-1", "Calculate 12*12", depends_on=["weather-2"])],
                           "worker did Get the weather in Rome; worker did Calculate 12*12"])
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run(
        "What is the weather in Rome, and what is 12*12?")
    assert crew.started == ["worker:Get the weather in Rome", "worker:Calculate 12*12"]
    assert result.output == "worker did Get the weather in Rome; worker did Calculate 12*12"


async def test_a_result_glued_to_another_in_the_answer_is_shown() -> None:
    """The 1.5B answered "tsilkrow100" for the results tsilkrow and 100: both are there."""
    workers = [Agent("text", model=answering({"Reverse the string 'worklist'": "tsilkrow"}), description="text"),
               Agent("math", model=answering({"Compute 99 + 1": "100"}), description="math")]
    brain = ScriptedModel([[add("r", "Reverse the string 'worklist'", "text"), add("m", "Compute 99 + 1", "math")],
                           call("finish", answer="tsilkrow100")])
    result = await Supervisor(workers, model=brain, mode="worklist", output=str).run(
        "Reverse the string 'worklist', and compute 99 + 1.")
    assert result.output == "tsilkrow100" and not [s for s in result.steps if isinstance(s, ToolStep) and s.error]


async def test_an_answer_written_from_the_results_must_cover_every_part_of_the_request() -> None:
    """The 1.5B never added its 12*12 task and the loop guard ended the run; '24C, sunny', written from the one
    result there was, stood as the answer to 'What is the weather in Rome, and what is 12*12?'."""
    crew = Crew()
    seen: list[list[Any]] = []
    brain = composing([add("w1", "Get the weather in Rome"), add("w2", "Get the weather in Rome"),
                       add("w3", "Get the weather in Rome"), "worker did Get the weather in Rome"], seen)
    result = await Supervisor([crew.agent("worker")], model=brain, mode="worklist").run(
        "What is the weather in Rome, and what is 12*12?")
    assert result.stop_reason == "loop" and result.output is None
    assert len(seen) == 4  # the answer was written, and refused: it covers no part that asked for 12*12
