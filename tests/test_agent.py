"""The Agent loop, driven offline by ScriptedModel / FunctionModel."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field

from agentflow import (
    Agent,
    Budget,
    ConfigError,
    Limits,
    Message,
    ModelResponse,
    ModelStep,
    OutputValidationError,
    RunResult,
    ToolCall,
    ToolStep,
    Usage,
    tool,
)
from agentflow.agent.loop import NUDGE
from agentflow.models import FunctionModel, RequestInfo, ScriptedModel, call

# -- tools --------------------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def noop() -> str:
    """Do nothing."""
    return "nothing happened"


def tool_steps(result: RunResult[Any]) -> list[ToolStep]:
    return [s for s in result.steps if isinstance(s, ToolStep)]


def model_steps(result: RunResult[Any]) -> list[ModelStep]:
    return [s for s in result.steps if isinstance(s, ModelStep)]


# -- ending on finish ---------------------------------------------------------------------------


async def test_ends_on_a_valid_finish() -> None:
    model = ScriptedModel([call("add", a=2, b=3), call("finish", answer="5")])
    agent = Agent("calc", "You add.", tools=[add], model=model)
    result = await agent.run("2+3?")
    assert result.ok and result.stop_reason == "finish"
    assert result.output == "5"
    assert result.agent == "calc"
    assert model.remaining == 0
    assert [type(s).__name__ for s in result.steps] == ["ModelStep", "ToolStep", "ModelStep", "ToolStep"]
    assert [s.index for s in result.steps] == [0, 1, 2, 3]
    add_step = tool_steps(result)[0]
    assert add_step.call.name == "add" and add_step.observation == "5" and add_step.error is None
    # The conversation: system, user, assistant(call), tool, assistant(finish), tool.
    roles = [m.role for m in result.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert result.messages[0].content == "You add."
    assert result.messages[1].content == "2+3?"
    assert result.messages[3].tool_call_id == add_step.call.id
    # The second request saw the observation of the first tool call.
    assert model.requests[1].last.role == "tool" and model.requests[1].last.content == "5"
    assert result.usage.requests == 2


async def test_no_system_message_without_instructions() -> None:
    model = ScriptedModel([call("finish", answer="hi")])
    result = await Agent(model=model).run("say hi")
    assert model.requests[0].messages == [Message.user("say hi")]
    assert result.output == "hi"


async def test_model_sees_tool_specs_plus_finish() -> None:
    model = ScriptedModel([call("finish", answer="x")])
    await Agent(tools=[add, noop], model=model).run("t")
    request = model.requests[0]
    assert request.tool_names == ["add", "noop", "finish"]
    assert request.tools[0] == add.spec
    finish = request.tools[-1]
    assert finish.parameters["properties"] == {"answer": {"type": "string"}}
    assert finish.parameters["required"] == ["answer"]


async def test_plain_functions_are_accepted_as_tools() -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    model = ScriptedModel([call("multiply", a=6, b=7), call("finish", answer="42")])
    result = await Agent(tools=[multiply], model=model).run("6*7")
    assert tool_steps(result)[0].observation == "42"
    assert model.requests[0].tool_names == ["multiply", "finish"]


# -- typed output -------------------------------------------------------------------------------


class Report(BaseModel):
    title: str
    score: int = Field(description="0-10")
    tags: list[str] = []


async def test_typed_output_with_pydantic_model() -> None:
    model = ScriptedModel([call("finish", title="T", score=7, tags=None)])
    agent = Agent(output=Report, model=model)
    result = await agent.run("report")
    assert isinstance(result.output, Report)
    assert result.output == Report(title="T", score=7, tags=[])
    finish = model.requests[0].tools[-1]
    assert list(finish.parameters["properties"]) == ["title", "score", "tags"]
    assert finish.parameters["properties"]["score"]["description"] == "0-10"


async def test_int_output_is_wrapped_as_answer() -> None:
    model = ScriptedModel([call("finish", answer=42)])
    result = await Agent(output=int, model=model).run("n?")
    assert result.output == 42 and isinstance(result.output, int)
    assert model.requests[0].tools[-1].parameters["properties"] == {"answer": {"type": "integer"}}


async def test_list_output_is_wrapped_as_answer() -> None:
    model = ScriptedModel([call("finish", answer=["a", "b"])])
    result = await Agent(output=list[str], model=model).run("list?")
    assert result.output == ["a", "b"]
    assert model.requests[0].tools[-1].parameters["properties"] == {
        "answer": {"type": "array", "items": {"type": "string"}}}


class Inner(BaseModel):
    value: int = 5


class Outer(BaseModel):
    inner: Inner


async def test_null_for_nested_defaulted_output_field_uses_the_default() -> None:
    model = ScriptedModel([call("finish", inner={"value": None})])
    result = await Agent(output=Outer, model=model, max_output_retries=1).run("t")
    assert result.output == Outer(inner=Inner())


# -- invalid finish -----------------------------------------------------------------------------


async def test_invalid_finish_is_fed_back_and_then_accepted() -> None:
    model = ScriptedModel([call("finish", answer="not a number"), call("finish", answer=3)])
    result = await Agent(output=int, model=model).run("n?")
    assert result.output == 3
    fed_back = model.requests[1].last
    assert fed_back.role == "tool"
    assert "Invalid `finish` arguments" in (fed_back.content or "")
    assert "answer" in (fed_back.content or "")
    bad = tool_steps(result)[0]
    assert bad.error == "invalid_output"
    assert tool_steps(result)[1].error is None


async def test_invalid_finish_json_is_fed_back() -> None:
    broken = ToolCall(id="broken_1", name="finish", arguments='{"answer": ')
    model = ScriptedModel([broken, call("finish", answer="ok")])
    result = await Agent(model=model).run("t")
    assert result.output == "ok"
    assert "not valid JSON" in (model.requests[1].last.content or "")
    assert model.requests[1].last.tool_call_id == "broken_1"


async def test_repeated_invalid_finish_raises_with_result() -> None:
    model = ScriptedModel([call("finish", wrong=1), call("finish", answer="x"), call("finish", answer=1)])
    agent = Agent(output=int, model=model, max_output_retries=2)
    with pytest.raises(OutputValidationError) as info:
        await agent.run("n?")
    result = info.value.result
    assert result.stop_reason == "error"
    assert result.output is None
    assert len(model.requests) == 2  # gave up without a third request
    assert model.remaining == 1
    assert [s.error for s in tool_steps(result)] == ["invalid_output", "invalid_output"]
    assert len(result.steps) == 4
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert result.usage.requests == 2 and result.usage.total_tokens > 0
    assert "2 times" in str(info.value)


# -- what goes wrong becomes an observation -----------------------------------------------------


async def test_unknown_tool_is_fed_back_with_the_tool_list() -> None:
    model = ScriptedModel([call("subtract", a=1, b=2), call("finish", answer="done")])
    result = await Agent(tools=[add, noop], model=model).run("t")
    assert result.ok
    step = tool_steps(result)[0]
    assert step.error == "unknown_tool"
    assert "subtract" in step.observation
    assert "add, noop, finish" in step.observation
    assert model.requests[1].last.role == "tool"
    assert model.requests[1].last.content == step.observation


async def test_invalid_tool_arguments_are_fed_back() -> None:
    model = ScriptedModel([call("add", a="one", b=2), call("finish", answer="done")])
    result = await Agent(tools=[add], model=model).run("t")
    step = tool_steps(result)[0]
    assert step.error == "invalid_arguments"
    assert "a: " in step.observation and "Invalid arguments for add" in step.observation
    assert result.ok


async def test_raising_tool_becomes_an_observation() -> None:
    @tool
    def explode(x: int) -> int:
        raise ValueError(f"cannot handle {x}")

    model = ScriptedModel([call("explode", x=3), call("finish", answer="recovered")])
    result = await Agent(tools=[explode], model=model).run("t")
    assert result.ok and result.output == "recovered"
    step = tool_steps(result)[0]
    assert step.error == "raised"
    assert "ValueError" in step.observation and "cannot handle 3" in step.observation
    assert model.requests[1].last.content == step.observation


async def test_tool_timeout_becomes_an_observation() -> None:
    @tool(timeout=0.05)
    async def hang() -> str:
        await asyncio.sleep(5)
        return "never"

    model = ScriptedModel([call("hang"), call("finish", answer="gave up")])
    result = await Agent(tools=[hang], model=model).run("t")
    assert result.ok and result.output == "gave up"
    step = tool_steps(result)[0]
    assert step.error == "timeout"
    assert "timed out" in step.observation and "0.05" in step.observation


async def test_text_reply_gets_a_nudge_and_the_run_continues() -> None:
    model = ScriptedModel(["I think the answer is 4.", call("finish", answer="4")])
    result = await Agent(model=model).run("2+2")
    assert result.output == "4"
    nudge = model.requests[1].last
    assert nudge.role == "user" and nudge.content == NUDGE
    assert "finish" in NUDGE
    assert [type(s).__name__ for s in result.steps] == ["ModelStep", "ModelStep", "ToolStep"]
    assert model_steps(result)[0].response.message.content == "I think the answer is 4."


async def test_tool_return_values_are_serialised() -> None:
    @tool
    def info() -> dict[str, Any]:
        return {"n": 1, "items": ["a"]}

    model = ScriptedModel([call("info"), call("finish", answer="ok")])
    result = await Agent(tools=[info], model=model).run("t")
    assert json.loads(tool_steps(result)[0].observation) == {"n": 1, "items": ["a"]}


# -- parallel tool calls ------------------------------------------------------------------------


async def test_parallel_tool_calls_run_concurrently() -> None:
    intervals: dict[int, tuple[float, float]] = {}

    @tool
    async def fetch(n: int) -> str:
        start = time.monotonic()
        await asyncio.sleep(0.2)
        intervals[n] = (start, time.monotonic())
        return f"page {n}"

    model = ScriptedModel([[call("fetch", n=1), call("fetch", n=2), call("fetch", n=3)],
                           call("finish", answer="done")])
    result = await Agent(tools=[fetch], model=model).run("t")
    assert result.ok
    assert sorted(intervals) == [1, 2, 3]
    latest_start = max(s for s, _ in intervals.values())
    earliest_end = min(e for _, e in intervals.values())
    assert latest_start < earliest_end, f"tool calls did not overlap: {intervals}"
    # Observations come back in call order, each tied to its call.
    steps = tool_steps(result)[:3]
    assert [s.observation for s in steps] == ["page 1", "page 2", "page 3"]
    tool_messages = [m for m in model.requests[1].messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_messages] == [s.call.id for s in steps]


async def test_finish_alongside_another_call_runs_both() -> None:
    model = ScriptedModel([[call("add", a=1, b=1), call("finish", answer="2")]])
    result = await Agent(tools=[add], model=model).run("t")
    assert result.output == "2"
    assert [s.observation for s in tool_steps(result)] == ["2", "Done."]


# -- approval -----------------------------------------------------------------------------------


def make_delete(log: list[str]) -> Any:
    @tool(requires_approval=True)
    def delete(path: str) -> str:
        """Delete a file."""
        log.append(path)
        return f"deleted {path}"

    return delete


async def test_approval_required_without_approver_is_rejected() -> None:
    ran: list[str] = []
    model = ScriptedModel([call("delete", path="/tmp/x"), call("finish", answer="ok")])
    result = await Agent(tools=[make_delete(ran)], model=model).run("t")
    assert ran == []
    step = tool_steps(result)[0]
    assert step.error == "rejected"
    assert "not approved" in step.observation
    assert result.ok


async def test_approver_returning_false_rejects() -> None:
    ran: list[str] = []
    asked: list[tuple[ToolCall, Any]] = []
    delete = make_delete(ran)

    def deny(c: ToolCall, t: Any) -> bool:
        asked.append((c, t))
        return False

    model = ScriptedModel([call("delete", path="/tmp/x"), call("finish", answer="ok")])
    result = await Agent(tools=[delete], model=model, approve=deny).run("t")
    assert ran == []
    assert tool_steps(result)[0].error == "rejected"
    assert len(asked) == 1
    assert asked[0][0].name == "delete" and json.loads(asked[0][0].arguments) == {"path": "/tmp/x"}
    assert asked[0][1] is delete


async def test_async_approver_returning_true_runs_the_tool() -> None:
    ran: list[str] = []

    async def allow(c: ToolCall, t: Any) -> bool:
        await asyncio.sleep(0)
        return True

    model = ScriptedModel([call("delete", path="/tmp/x"), call("finish", answer="ok")])
    result = await Agent(tools=[make_delete(ran)], model=model, approve=allow).run("t")
    assert ran == ["/tmp/x"]
    step = tool_steps(result)[0]
    assert step.error is None and step.observation == "deleted /tmp/x"


async def test_approver_is_not_asked_for_tools_without_the_flag() -> None:
    asked: list[str] = []

    def approver(c: ToolCall, t: Any) -> bool:
        asked.append(c.name)
        return False

    model = ScriptedModel([call("add", a=1, b=2), call("finish", answer="3")])
    result = await Agent(tools=[add], model=model, approve=approver).run("t")
    assert asked == []
    assert tool_steps(result)[0].observation == "3"


# -- limits -------------------------------------------------------------------------------------


def looping_model(**kwargs: Any) -> FunctionModel:
    """A model that never finishes."""
    return FunctionModel(lambda info: call("noop"), **kwargs)


async def test_max_steps_returns_a_result_with_history() -> None:
    model = looping_model()
    result = await Agent(tools=[noop], model=model, max_steps=3).run("loop")
    assert result.stop_reason == "max_steps"
    assert not result.ok and result.output is None
    assert "max_steps=3" in result.detail
    assert len(model.requests) == 3
    assert len(result.steps) == 6
    assert len(model_steps(result)) == 3 and len(tool_steps(result)) == 3
    assert [m.role for m in result.messages] == ["user"] + ["assistant", "tool"] * 3
    assert result.usage.requests == 3
    assert result.usage.total_tokens > 0


async def test_limits_object_max_steps() -> None:
    model = looping_model()
    result = await Agent(tools=[noop], model=model, limits=Limits(max_steps=2)).run("loop")
    assert result.stop_reason == "max_steps"
    assert len(model.requests) == 2


async def test_max_tokens() -> None:
    def reply(info: RequestInfo) -> ModelResponse:
        return ModelResponse(message=Message.assistant(None, [call("noop")]),
                             usage=Usage(requests=1, input_tokens=60, output_tokens=50))

    model = FunctionModel(reply)
    result = await Agent(tools=[noop], model=model, limits=Limits(max_tokens=200)).run("t")
    assert result.stop_reason == "max_tokens"
    assert result.output is None
    assert len(model.requests) == 2  # 110 tokens < 200 after one call, 220 >= 200 after two
    assert result.usage.total_tokens == 220
    assert "max_tokens=200" in result.detail
    assert len(result.steps) == 4


async def test_max_cost() -> None:
    def reply(info: RequestInfo) -> ModelResponse:
        return ModelResponse(message=Message.assistant(None, [call("noop")]),
                             usage=Usage(requests=1, input_tokens=1, output_tokens=1, cost=0.4))

    model = FunctionModel(reply)
    result = await Agent(tools=[noop], model=model, limits=Limits(max_cost=1.0)).run("t")
    assert result.stop_reason == "max_cost"
    assert len(model.requests) == 3
    assert result.usage.cost == pytest.approx(1.2)


async def test_max_seconds_with_a_slow_model() -> None:
    model = ScriptedModel([call("finish", answer="late")], delay=5.0)
    start = time.monotonic()
    result = await Agent(model=model, limits=Limits(max_seconds=0.1)).run("t")
    elapsed = time.monotonic() - start
    assert result.stop_reason == "max_time"
    assert result.output is None
    assert len(model.requests) == 1  # the request was made, and cut off
    assert result.messages == [Message.user("t")]
    assert elapsed < 4  # it did not wait for the 5 s reply


async def test_max_seconds_keeps_completed_steps() -> None:
    model = FunctionModel(lambda info: call("noop"), delay=0.03)
    result = await Agent(tools=[noop], model=model, limits=Limits(max_seconds=0.15), max_steps=None).run("t")
    assert result.stop_reason == "max_time"
    assert len(model_steps(result)) >= 1
    assert result.usage.requests == len(model_steps(result))


async def test_parent_budget_bounds_a_child_run_and_usage_rolls_up() -> None:
    parent = Budget(Limits(max_steps=3))
    model = looping_model()
    result = await Agent(tools=[noop], model=model, max_steps=30).run("t", budget=parent)
    assert result.stop_reason == "max_steps"
    assert "max_steps=3" in result.detail
    assert len(model.requests) == 3
    assert parent.steps == 3
    assert parent.usage == result.usage
    assert parent.usage.requests == 3
    # The parent is exhausted, so a further child run stops before any model call.
    again = ScriptedModel([call("finish", answer="x")])
    second = await Agent(model=again).run("t", budget=parent)
    assert second.stop_reason == "max_steps"
    assert again.requests == []


async def test_usage_of_several_children_sums_in_the_parent() -> None:
    parent = Budget()
    first = await Agent(model=ScriptedModel([call("finish", answer="a")])).run("one", budget=parent)
    second = await Agent(model=ScriptedModel([call("noop"), call("finish", answer="b")]),
                         tools=[noop]).run("two", budget=parent)
    assert parent.usage == first.usage + second.usage
    assert parent.usage.requests == 3
    assert parent.steps == 3


async def test_parent_token_budget_bounds_the_child() -> None:
    def reply(info: RequestInfo) -> ModelResponse:
        return ModelResponse(message=Message.assistant(None, [call("noop")]),
                             usage=Usage(requests=1, input_tokens=10, output_tokens=10))

    parent = Budget(Limits(max_tokens=50))
    model = FunctionModel(reply)
    result = await Agent(tools=[noop], model=model).run("t", budget=parent)
    assert result.stop_reason == "max_tokens"
    assert len(model.requests) == 3
    assert parent.usage.total_tokens == 60


# -- streaming ----------------------------------------------------------------------------------


async def test_stream_yields_steps_in_order_then_result() -> None:
    model = ScriptedModel([call("add", a=1, b=2), "thinking", call("finish", answer="3")])
    stream = Agent(tools=[add], model=model).stream("t")
    with pytest.raises(RuntimeError, match="has not finished"):
        _ = stream.result
    events: list[Any] = []
    async for event in stream:
        events.append(event)
        if len(events) == 2:
            # Steps arrive as they happen: only one model request so far.
            assert len(model.requests) == 1
    assert [e.kind for e in events] == ["run_start", "model", "tool", "model", "model", "tool", "run_end"]
    assert events[0].task == "t" and events[-1].output == "3" and events[-1].stop_reason == "finish"
    seen = events[1:-1]
    assert [s.index for s in seen] == [0, 1, 2, 3, 4]
    assert isinstance(seen[0], ModelStep) and isinstance(seen[1], ToolStep)
    assert seen[1].observation == "3"
    result = stream.result
    assert result.output == "3"
    assert result.steps == seen


# -- run_sync -----------------------------------------------------------------------------------


def test_run_sync_without_a_loop() -> None:
    model = ScriptedModel([call("add", a=20, b=22), call("finish", answer="42")])
    result = Agent(tools=[add], model=model).run_sync("t")
    assert result.output == "42"
    assert tool_steps(result)[0].observation == "42"


async def test_run_sync_inside_a_running_loop_is_a_clear_error() -> None:
    model = ScriptedModel([call("finish", answer="x")])
    with pytest.raises(RuntimeError, match=r"running event loop.*await agent\.run"):
        Agent(model=model).run_sync("t")
    assert model.requests == []


# -- errors -------------------------------------------------------------------------------------


async def test_model_exception_propagates_with_partial_result() -> None:
    def reply(info: RequestInfo) -> Any:
        if len(info.messages) > 1:
            raise RuntimeError("provider exploded")
        return call("add", a=1, b=1)

    model = FunctionModel(reply)
    with pytest.raises(RuntimeError, match="provider exploded") as info:
        await Agent(tools=[add], model=model).run("t")
    result = info.value.result  # type: ignore[attr-defined]
    assert isinstance(result, RunResult)
    assert result.stop_reason == "error"
    assert "provider exploded" in result.detail
    assert result.output is None
    assert [type(s).__name__ for s in result.steps] == ["ModelStep", "ToolStep"]
    assert [m.role for m in result.messages] == ["user", "assistant", "tool"]
    assert result.usage.requests == 1


async def test_scripted_model_running_out_is_an_error_with_result() -> None:
    model = ScriptedModel([call("noop")])
    with pytest.raises(AssertionError, match="ran out of replies") as info:
        await Agent(tools=[noop], model=model).run("t")
    assert len(info.value.result.steps) == 2  # type: ignore[attr-defined]


def test_tool_named_finish_is_a_config_error() -> None:
    @tool
    def finish(answer: str) -> str:
        return answer

    with pytest.raises(ConfigError, match="finish"):
        Agent(tools=[finish], model=ScriptedModel([]))

    @tool(name="finish")
    def done(answer: str) -> str:
        return answer

    with pytest.raises(ConfigError, match="may not be called 'finish'"):
        Agent(tools=[done], model=ScriptedModel([]))


async def test_no_model_and_no_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENTFLOW_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    agent = Agent("a", tools=[add])  # defining the agent needs no model yet
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        _ = agent.model
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        await agent.run("t")
    assert info.value.result.messages == [Message.user("t")]  # type: ignore[attr-defined]


def test_explicit_model_object_is_used_as_is() -> None:
    model = ScriptedModel([])
    assert Agent(model=model).model is model


# -- regressions of bugs found while writing these tests ---------------------------------------


async def test_max_output_retries_zero_does_not_fail_a_run_without_invalid_finish() -> None:
    model = ScriptedModel([call("noop"), call("finish", answer="x")])
    result = await Agent(tools=[noop], model=model, max_output_retries=0).run("t")
    assert result.output == "x"


async def test_tool_raising_its_own_timeout_error_is_not_reported_as_none_seconds() -> None:
    @tool
    def connect() -> str:
        raise TimeoutError("connect timed out")

    model = ScriptedModel([call("connect"), call("finish", answer="x")])
    result = await Agent(tools=[connect], model=model).run("t")
    step = tool_steps(result)[0]
    assert "None" not in step.observation
    assert "connect timed out" in step.observation


async def test_finish_with_an_unknown_field_is_fed_back() -> None:
    model = ScriptedModel([call("finish", title="T", score=1, tagz=["a"]),
                           call("finish", title="T", score=1, tags=["a"])])
    result = await Agent(output=Report, model=model).run("t")
    assert tool_steps(result)[0].error == "invalid_output"
    assert result.output == Report(title="T", score=1, tags=["a"])


async def test_an_agents_model_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    agent = Agent("swap", model=ScriptedModel([call("finish", answer="first")]))
    assert (await agent.run("go")).output == "first"
    agent.model = ScriptedModel([call("finish", answer="second")])
    assert (await agent.run("go")).output == "second"
    agent.model = "openai:gpt-4o-mini"
    assert agent.model.name == "openai:gpt-4o-mini"
    with pytest.raises(ConfigError, match="model must be a 'provider:model' string or a Model, not int"):
        agent.model = 3  # type: ignore[assignment]



async def test_a_subclass_changes_the_loop_through_its_hooks() -> None:
    from agentflow import Run, StopRun

    class Careful(Agent[str]):
        refused = 0

        async def before_turn(self, run: Run[str]) -> None:
            run.messages.append(Message.user(f"(turn {len(run.steps)})"))
            if len(run.steps) > 6:
                raise StopRun("max_steps", "careful enough")

        def refuse_finish(self, run: Run[str]) -> str | None:
            self.refused += 1
            return "Check once more." if self.refused == 1 else None

    seen: list[str] = []

    def reply(info: RequestInfo) -> Any:
        seen.append(info.last.content or "")
        return call("finish", answer="sure")

    agent = Careful("careful", model=FunctionModel(reply))
    result = await agent.run("go")
    assert result.output == "sure" and agent.refused == 2
    assert [s.error for s in result.steps if isinstance(s, ToolStep)] == ["rejected", None]
    assert seen == ["go", "(turn 2)"]
    stopped = await Careful("stops", model=FunctionModel(lambda info: "thinking")).run("go")
    assert (stopped.stop_reason, stopped.detail) == ("max_steps", "careful enough")


class Longest(BaseModel):
    files: int
    longest_file: str


def test_a_finish_naming_what_no_tool_returned_goes_back_once() -> None:
    @tool
    def count() -> int:
        """How many files there are."""
        return 19

    @tool
    def longest() -> str:
        """The longest file."""
        return "shopify_worklist.py: 253"

    model = ScriptedModel([call("count"), call("finish", files=19, longest_file="example_file.py"),
                           call("longest"), call("finish", files=19, longest_file="shopify_worklist.py")])
    result = Agent("a", tools=[count, longest], output=Longest, model=model).run_sync("Count and find the longest")
    assert result.output == Longest(files=19, longest_file="shopify_worklist.py")
    refused = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert len(refused) == 1 and "longest_file='example_file.py' appears in no tool result" in refused[0].observation


def test_a_second_ungrounded_finish_stands_and_grounded_names_pass_at_once() -> None:
    @tool
    def look() -> str:
        """Look."""
        return "1 file: report-2026.txt"

    twice = ScriptedModel([call("finish", files=1, longest_file="made_up.py"),
                           call("finish", files=1, longest_file="made_up.py")])
    result = Agent("a", tools=[look], output=Longest, model=twice).run_sync("Which file?")
    assert result.ok and result.output == Longest(files=1, longest_file="made_up.py")  # not refused forever
    grounded = ScriptedModel([call("look"), call("finish", files=1, longest_file="report-2026.txt")])
    result = Agent("a", tools=[look], output=Longest, model=grounded).run_sync("Which file?")
    assert result.ok and not [s for s in result.steps if isinstance(s, ToolStep) and s.error]
    plain = ScriptedModel([call("finish", files=2, longest_file="mentioned.py")])  # named in the task: grounded
    assert Agent("a", tools=[look], output=Longest, model=plain).run_sync("Is mentioned.py, of 2 files, long?").ok


def test_a_typed_finish_with_a_number_no_tool_returned_goes_back_once() -> None:
    """The quickstart's second invention: the supervisor heard only from its finder and made up the count."""
    @tool
    def count() -> str:
        """How many files there are."""
        return "19 files"

    @tool
    def longest() -> str:
        """The longest file."""
        return "shopify_worklist.py, with 253 lines"

    model = ScriptedModel([call("longest"), call("finish", files=1, longest_file="shopify_worklist.py"),
                           call("count"), call("finish", files=19, longest_file="shopify_worklist.py")])
    result = Agent("a", tools=[count, longest], output=Longest, model=model).run_sync("Count and find the longest")
    assert result.output == Longest(files=19, longest_file="shopify_worklist.py")
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert "Not done: files=1 appears in no tool result" in refused.observation
    seen = ScriptedModel([call("longest"), call("finish", files=253, longest_file="shopify_worklist.py")])
    assert not [s for s in Agent("a", tools=[longest], output=Longest, model=seen).run_sync("go").steps
                if isinstance(s, ToolStep) and s.error]  # 253 was seen: grounded (even if it is the wrong field)


def test_a_finish_that_leaves_out_a_part_the_task_names_goes_back_once() -> None:
    """The 1.5B, asked for the capitals of France and Kenya, looked up France and finished with Paris."""
    @tool
    def capital(country: str) -> str:
        """The capital of a country."""
        return {"France": "Paris", "Kenya": "Nairobi"}[country]

    model = ScriptedModel([call("capital", country="France"), call("finish", answer="Paris"),
                           call("capital", country="Kenya"), call("finish", answer="Paris and Nairobi")])
    result = Agent("a", tools=[capital], model=model).run_sync("Look up the capital city of France and Kenya.")
    assert result.output == "Paris and Nairobi"
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert "your task also names Kenya, which neither your answer nor your tool calls cover" in refused.observation
    # with the answer so far: told that its task also named Lima, the 1.5B looked Lima up and finished with Lima
    # alone, and Oslo's weather was lost
    assert ("Please do for Kenya what the task asks, with a tool, and answer every part of the task in one answer "
            "(yours so far: 'Paris')") in refused.observation
    # A task naming one thing, an answer covering none of them (another register), or names in the context a
    # supervisor added (the 1.5B's "Japan is a country in East Asia.") are not checked.
    for task, answer in (("What is the capital of France?", "Paris"), ("Compare France and Kenya.", "They differ."),
                         ("Find the capital of Japan\n\nContext:\nJapan is a country in East Asia.", "Tokyo"),
                         ("[lead] What is the weather in Tokyo? What is 15 + 27?", "Tokyo: 15C, rain")):
        done = Agent("a", tools=[capital], model=ScriptedModel([call("finish", answer=answer)])).run_sync(task)
        assert done.output == answer


def test_a_word_miscopied_from_a_tool_result_goes_back_once() -> None:
    """The 1.5B, told 'wolftnega' by its tool, finished with 'wolfntega'."""
    @tool
    def reverse(text: str) -> str:
        """Reverse a string."""
        return text[::-1]

    model = ScriptedModel([call("reverse", text="agentflow"), call("finish", answer="It is wolfntega."),
                           call("finish", answer="It is wolftnega.")])
    result = Agent("a", tools=[reverse], model=model).run_sync("Reverse 'agentflow'.")
    assert result.output == "It is wolftnega."
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert "'wolfntega' is not what the tool result says ('wolftnega')" in refused.observation
    assert "Please write 'wolftnega' exactly as the tool result has it" in refused.observation
    # Words that are no tool result's letters reordered stand: plain prose is not a miscopy.
    prose = ScriptedModel([call("reverse", text="current"), call("finish", answer="Currently: tnerruc, reversed")])
    assert not [s for s in Agent("a", tools=[reverse], model=prose).run_sync("go").steps
                if isinstance(s, ToolStep) and s.error]


def test_an_answer_from_the_models_own_head_instead_of_its_tools_goes_back_once() -> None:
    """Given "Calculate 25*4 and find the capital of Italy", the 1.5B math agent got 100 from its calculator
    and finished with "Rome": its supervisor never saw the 100."""
    @tool
    def calculator(expression: str) -> str:
        """Evaluate arithmetic."""
        return "100"

    model = ScriptedModel([call("calculator", expression="25*4"), call("finish", answer="Rome"),
                           call("finish", answer="25*4 = 100. I have no tool for the capital of Italy.")])
    result = Agent("math", tools=[calculator], model=model).run_sync("Calculate 25*4 and find the capital of Italy.")
    assert result.output == "25*4 = 100. I have no tool for the capital of Italy."
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert refused.observation == (
        "Not done: 'Rome' comes from no tool result and your answer shows none of your tool results. Please answer "
        "from your tool results, and say which part of the task your tools cannot answer, then call `finish` again.")
    # An answer that shows a tool result, one whose names the task or a result holds, or prose whose only
    # capitalised word starts a sentence, stands at once.
    for answer in ("It is 100, and the capital is Rome.", "The capital of Italy.", "There you are."):
        done = Agent("math", tools=[calculator], model=ScriptedModel([call("calculator", expression="25*4"),
                                                                      call("finish", answer=answer)]))
        assert done.run_sync("Calculate 25*4 and find the capital of Italy.").output == answer
    # A number made up instead of a name: the text agent asked to "reverse 'worklist' and compute 99 + 1" got
    # 'tsilkrow' from its tool and finished with "100".
    made_up = ScriptedModel([call("calculator", expression="reverse"), call("finish", answer="101"),
                             call("finish", answer="101")])
    refused = [s for s in Agent("text", tools=[calculator], model=made_up).run_sync("Compute 99 + 2.").steps
               if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert len(refused) == 1 and refused[0].observation.startswith("Not done: '101' comes from no tool result")


def test_an_agent_that_worked_on_something_else_than_its_tasks_text_goes_back_once() -> None:
    """Given "Count the words in 'one two three four'" with a capital's lookup as context, the 1.5B lookup agent
    called capital("Japan") and finished with "Tokyo"."""
    @tool
    def capital(country: str) -> str:
        """The capital of a country."""
        return "Tokyo"

    task = "Count the words in 'one two three four'.\n\nContext:\n{\"lookup-japan\": \"Tokyo\"}"
    model = ScriptedModel([call("capital", country="Japan"), call("finish", answer="Tokyo"),
                           call("finish", answer="I have no tool that counts words.")])
    result = Agent("lookup", tools=[capital], model=model).run_sync(task)
    assert result.output == "I have no tool that counts words."
    [refused] = [s for s in result.steps if isinstance(s, ToolStep) and s.error == "ungrounded"]
    assert refused.observation == (
        "Not done: your task is about 'one two three four', which neither your answer nor your tool calls hold. "
        "Please do the task on that, or say that your tools cannot do it, then call `finish` again.")
    # A tool call on the quoted text, or no tool call at all, is not held to it.
    for script in ([call("capital", country="one two three four"), call("finish", answer="Tokyo")],
                   [call("finish", answer="4")]):
        done = Agent("lookup", tools=[capital], model=ScriptedModel(script)).run_sync(task)
        assert not [s for s in done.steps if isinstance(s, ToolStep) and s.error]
