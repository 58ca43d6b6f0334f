"""What the loop and the constrained mode do for small models: repeated calls, forced finish,
optional arguments, and a supervisor's delegation tools without `context`."""

from __future__ import annotations

from typing import Any

from agentflow import Agent, FunctionModel, ModelSettings, Supervisor, tool
from agentflow.models import RequestInfo, ToolSpec, call
from agentflow.models.openai import OpenAIModel, action_schema, constrained_messages
from agentflow.runtime.guards import FAILED_AGAIN, REPEATED

CALLS: list[int] = []


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    CALLS.append(1)
    return f"value of {key}"


@tool
def ticker() -> int:
    """A counter that goes up on every call."""
    CALLS.append(1)
    return len(CALLS)


@tool
def broken(key: str) -> str:
    """Always fails."""
    raise ValueError(f"no {key}")


def repeating(tool_name: str, times: int, **args: Any) -> FunctionModel:
    """Calls `tool_name(**args)` `times` times, then finishes."""
    def reply(info: RequestInfo) -> Any:
        done = sum(1 for m in info.messages if m.role == "tool")
        return call(tool_name, **args) if done < times else call("finish", answer="ok")
    return FunctionModel(reply)


def observations(result: Any) -> list[str]:
    return [s.observation for s in result.steps if s.kind == "tool" and s.call.name != "finish"]


def test_a_repeated_call_with_the_same_result_is_named_and_still_runs() -> None:
    CALLS.clear()
    result = Agent("a", tools=[lookup], model=repeating("lookup", 3, key="k"), max_steps=6).run_sync("t")
    seen = observations(result)
    assert seen[0] == "value of k" and seen[1] == seen[2] == "value of k" + REPEATED
    assert len(CALLS) == 3 and result.output == "ok"


def test_a_call_whose_result_changed_gets_no_note() -> None:
    CALLS.clear()
    result = Agent("a", tools=[ticker], model=repeating("ticker", 2), max_steps=6).run_sync("t")
    assert observations(result) == ["1", "2"]


def test_a_call_that_fails_the_same_way_again_is_told_to_change() -> None:
    result = Agent("a", tools=[broken], model=repeating("broken", 2, key="k"), max_steps=6).run_sync("t")
    first, second = observations(result)
    assert "no k" in first and not first.endswith(FAILED_AGAIN)
    assert second == first + FAILED_AGAIN


def test_different_arguments_are_not_a_repeat() -> None:
    def reply(info: RequestInfo) -> Any:
        done = sum(1 for m in info.messages if m.role == "tool")
        return call("finish", answer="ok") if done == 2 else call("lookup", key=f"k{done}")
    result = Agent("a", tools=[lookup], model=FunctionModel(reply), max_steps=6).run_sync("t")
    assert observations(result) == ["value of k0", "value of k1"]


def test_calls_that_alternate_are_repeats_too() -> None:
    """The 1.5B alternated capital("Oslo") and capital("Lima"), both unknown, until max_steps."""
    def reply(info: RequestInfo) -> Any:
        done = sum(1 for m in info.messages if m.role == "tool")
        return call("finish", answer="ok") if done == 4 else call("lookup", key="ab"[done % 2])
    result = Agent("a", tools=[lookup], model=FunctionModel(reply), max_steps=6).run_sync("t")
    assert observations(result) == ["value of a", "value of b", "value of a" + REPEATED, "value of b" + REPEATED]


def test_a_constrained_model_that_repeats_must_finish_next() -> None:
    for constrained in (True, False):
        model = repeating("lookup", 2, key="k")
        model.replies_in_text = not constrained
        Agent("a", tools=[lookup], model=model, max_steps=6).run_sync("t")
        choices = [r.settings.tool_choice for r in model.requests]
        assert choices == ([None, None, "finish"] if constrained else [None, None, None])


def test_the_constrained_grammar_narrows_to_the_chosen_tool_but_the_prompt_lists_all() -> None:
    model = OpenAIModel("m", base_url="http://127.0.0.1:9/v1", tool_calling="constrained")
    specs = [lookup.spec, ToolSpec(name="finish", description="Finish.", parameters={
        "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]})]
    from agentflow.core.messages import Message

    body = model._body([Message.user("t")], specs, None, ModelSettings(tool_choice="finish"), stream=False)
    branches = body["response_format"]["json_schema"]["schema"]["anyOf"]
    assert [b["properties"]["tool"]["const"] for b in branches] == ["finish"]
    assert "- lookup:" in body["messages"][0]["content"] and "- finish:" in body["messages"][0]["content"]


def test_optional_arguments_may_be_left_out_under_the_grammar() -> None:
    @tool
    def search(query: str, limit: int | None = None) -> str:
        """Search."""
        return query

    assert search.spec.parameters["required"] == ["query", "limit"]  # strict form: all required
    arguments = action_schema([search.spec])["anyOf"][0]["properties"]["arguments"]
    assert arguments["required"] == ["query"] and "limit" in arguments["properties"]
    prompt = constrained_messages([], [search.spec])[0]["content"]
    assert "query (string)" in prompt and "limit (optional: integer" in prompt


def test_a_supervisor_offers_constrained_models_task_without_context() -> None:
    for constrained in (True, False):
        worker = Agent("worker", "Work.", model=FunctionModel(lambda _: call("finish", answer="done")))
        boss_model = FunctionModel(lambda info: call("finish", answer="x") if len(info.messages) > 2
                                   else call("worker", task="do it"))
        boss_model.replies_in_text = not constrained
        Supervisor([worker], model=boss_model).run_sync("go")
        spec = next(t for t in boss_model.requests[0].tools if t.name == "worker")
        assert ("context" in spec.parameters["properties"]) is not constrained
        assert spec.parameters["required"] == (["task"] if constrained else ["task", "context"])
        assert boss_model.requests[1].messages[-1].content == "done"  # the delegation ran without context


def test_a_constrained_supervisor_that_redelegates_an_answered_task_must_finish_next() -> None:
    worker = Agent("worker", "Work.", model=FunctionModel(lambda _: call("finish", answer="done")))

    def boss(info: RequestInfo) -> Any:
        return call("finish", answer="done") if info.settings.tool_choice == "finish" else call("worker", task="x")
    model = FunctionModel(boss)
    model.replies_in_text = False
    result = Supervisor([worker], model=model).run_sync("go")
    assert result.stop_reason == "finish" and result.output == "done"
    refused = [s for s in result.steps if s.kind == "tool" and s.error == "repeated"]
    assert len(refused) == 1 and "already gave worker this exact task" in refused[0].observation
    assert [r.settings.tool_choice for r in model.requests] == [None, None, "finish"]
