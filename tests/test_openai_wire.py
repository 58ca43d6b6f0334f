"""The real `openai` SDK against a local server speaking Chat Completions: we speak its protocol."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agentflow import Agent, ConfigError, Message, ModelError, TextDelta, ToolCall, ToolCallDelta, get_model, tool
from agentflow.models import ModelSettings, OutputSpec, RetryPolicy, ToolSpec
from agentflow.models.openai import OpenAIModel
from tests.llm_server import LLMServer, Reply, error_reply, openai_reply

FAST = RetryPolicy(attempts=3, initial_delay=0.01)
ADD = ToolSpec(name="add", description="Add two integers.",
               parameters={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                           "required": ["a", "b"], "additionalProperties": False})


def model(server: LLMServer, **kw: object) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", base_url=server.url + "/v1", api_key="sk-test", retry=FAST, **kw)  # type: ignore[arg-type]


async def test_text_reply_and_usage_cost(llm_server: LLMServer) -> None:
    llm_server.add(openai_reply("Hello!", prompt_tokens=1000, completion_tokens=100, cached=400))
    response = await model(llm_server).request([Message.system("Be brief."), Message.user("Hi")])
    assert response.message.content == "Hello!"
    assert response.finish_reason == "stop"
    u = response.usage
    assert (u.requests, u.input_tokens, u.output_tokens, u.cache_read_tokens) == (1, 1000, 100, 400)
    # gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output
    assert u.cost == pytest.approx((600 * 0.15 + 400 * 0.075 + 100 * 0.60) / 1e6)
    sent = llm_server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body == {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                               {"role": "user", "content": "Hi"}]}


async def test_tool_calls_and_history_round_trip(llm_server: LLMServer) -> None:
    llm_server.add(openai_reply(None, [("c1", "add", {"a": 1, "b": 2}), ("c2", "add", {"a": 3, "b": 4})]),
                   openai_reply("3 and 7"))
    m = model(llm_server)
    first = await m.request([Message.user("add")], tools=[ADD], settings=ModelSettings(tool_choice="required"))
    calls = first.message.tool_calls
    assert [c.id for c in calls] == ["c1", "c2"] and calls[1].parsed_arguments() == {"a": 3, "b": 4}
    assert first.finish_reason == "tool_calls"
    body = llm_server.requests[0].body
    loose = {k: v for k, v in ADD.parameters.items() if k != "additionalProperties"}  # not enforced unless strict
    assert body["tools"] == [{"type": "function", "function": {"name": "add", "description": "Add two integers.",
                                                               "parameters": loose}}]
    assert body["tool_choice"] == "required"
    history = [Message.user("add"), first.message, Message.tool(calls[0], "3"), Message.tool(calls[1], "7")]
    await m.request(history, tools=[ADD])
    sent = llm_server.requests[1].body["messages"]
    assert sent[1]["tool_calls"][1] == {"id": "c2", "type": "function",
                                        "function": {"name": "add", "arguments": json.dumps({"a": 3, "b": 4})}}
    assert sent[2:] == [{"role": "tool", "tool_call_id": "c1", "content": "3"},
                        {"role": "tool", "tool_call_id": "c2", "content": "7"}]


async def test_strict_flag_and_structured_output(llm_server: LLMServer) -> None:
    llm_server.add(openai_reply('{"city": "Paris"}'), openai_reply("x"))
    m = model(llm_server, strict=True)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    response = await m.request([Message.user("capital of France?")], output=OutputSpec(name="City", schema_=schema))
    assert json.loads(response.message.content or "") == {"city": "Paris"}
    assert llm_server.requests[0].body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "City", "schema": schema, "strict": True}}
    await m.request([Message.user("x")], tools=[ADD])
    assert llm_server.requests[1].body["tools"][0]["function"] == {
        "name": "add", "description": "Add two integers.", "parameters": ADD.parameters, "strict": True}


def _chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def test_streaming_text_and_tool_call_deltas(llm_server: LLMServer) -> None:
    llm_server.add(Reply(sse=[
        (None, _chunk({"role": "assistant", "content": "Let me "})),
        (None, _chunk({"content": "add."})),
        (None, _chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                       "function": {"name": "add", "arguments": '{"a":'}}]})),
        (None, _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' 1, "b": 2}'}}]})),
        (None, _chunk({}, "tool_calls")),
        (None, {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini", "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}),
        (None, "[DONE]"),
    ]))
    events = [e async for e in model(llm_server).stream([Message.user("add 1 and 2")], tools=[ADD])]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let me ", "add."]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].name == "add" and "".join(d.arguments for d in deltas) == '{"a": 1, "b": 2}'
    final = events[-1]
    assert final.message.content == "Let me add."  # type: ignore[union-attr]
    assert final.message.tool_calls == (ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}'),)  # type: ignore[union-attr]
    assert final.usage.input_tokens == 12 and final.usage.output_tokens == 7  # type: ignore[union-attr]
    body = llm_server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_429_with_retry_after_then_success(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(429, "slow down", {"Retry-After": "1"}), openai_reply("ok"))
    started = time.monotonic()
    response = await model(llm_server).request([Message.user("hi")])
    assert response.message.content == "ok"
    assert len(llm_server.requests) == 2
    assert time.monotonic() - started >= 0.95  # waited as long as the server asked, not the 0.01 s backoff


async def test_retry_after_ms_is_preferred(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(429, "slow down", {"retry-after-ms": "300", "Retry-After": "30"}), openai_reply("ok"))
    started = time.monotonic()
    await model(llm_server).request([Message.user("hi")])
    assert 0.25 <= time.monotonic() - started < 10


async def test_500_then_success(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(500, "boom"), error_reply(503, "busy"), openai_reply("recovered"))
    response = await model(llm_server).request([Message.user("hi")])
    assert response.message.content == "recovered" and len(llm_server.requests) == 3


async def test_retries_give_up_with_a_clear_error(llm_server: LLMServer) -> None:
    llm_server.add(*[error_reply(429, "quota exceeded") for _ in range(3)])
    with pytest.raises(ModelError) as info:
        await model(llm_server).request([Message.user("hi")])
    text = str(info.value)
    assert "openai" in text and "gpt-4o-mini" in text and "HTTP 429" in text and "after 3 attempts" in text
    assert "quota exceeded" in text and "Fix:" in text
    assert info.value.status == 429 and len(llm_server.requests) == 3


async def test_timeout_is_retried_then_reported(llm_server: LLMServer) -> None:
    llm_server.add(Reply(body={}, delay=1.0), openai_reply("late but fine"))
    m = OpenAIModel("gpt-4o-mini", base_url=llm_server.url + "/v1", api_key="k", timeout=0.3, retry=FAST)
    assert (await m.request([Message.user("hi")])).message.content == "late but fine"
    llm_server.add(*[Reply(body={}, delay=1.0) for _ in range(3)])
    with pytest.raises(ModelError, match="timed out"):
        await m.request([Message.user("hi")])


async def test_401_is_not_retried_and_names_the_key(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(ModelError) as info:
        await model(llm_server).request([Message.user("hi")])
    assert "OPENAI_API_KEY" in str(info.value) and "HTTP 401" in str(info.value)
    assert len(llm_server.requests) == 1


async def test_connection_refused_names_the_url() -> None:
    m = OpenAIModel("m", base_url="http://127.0.0.1:9/v1", api_key="k", retry=RetryPolicy(attempts=1))
    with pytest.raises(ModelError, match="could not connect to http://127.0.0.1:9/v1"):
        await m.request([Message.user("hi")])


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_model("openai:gpt-4o-mini")


def test_env_base_url_and_key_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
    m = get_model("openai:qwen")
    assert isinstance(m, OpenAIModel) and m.base_url == "http://127.0.0.1:1234/v1"  # no key needed locally


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="openai, anthropic"):
        get_model("mistral:large")
    with pytest.raises(ConfigError, match="provider:model"):
        get_model("large")
    with pytest.raises(ConfigError, match="names no provider. Fix: write 'openai:gpt-4o'"):
        get_model("gpt-4o")


async def test_constrained_mode_turns_json_actions_into_tool_calls(llm_server: LLMServer) -> None:
    llm_server.add(openai_reply('{"thought": "add them", "tool": "add", "arguments": {"a": 2, "b": 5}}'))
    m = model(llm_server, tool_calling="constrained")
    response = await m.request([Message.system("You add."), Message.user("2+5?")], tools=[ADD])
    (c,) = response.message.tool_calls
    assert (c.name, c.parsed_arguments(), response.message.content) == ("add", {"a": 2, "b": 5}, "add them")
    body = llm_server.requests[0].body
    assert "tools" not in body
    schema = body["response_format"]["json_schema"]["schema"]
    assert [v["properties"]["tool"] for v in schema["anyOf"]] == [{"const": "add"}]
    assert schema["anyOf"][0]["properties"]["arguments"] == ADD.parameters
    assert body["messages"][0]["role"] == "system" and "add: Add two integers." in body["messages"][0]["content"]
    # The history goes back as JSON actions and observations the model's template can always render.
    llm_server.add(openai_reply('{"thought": "", "tool": "add", "arguments": {"a": 0, "b": 0}}'))
    await m.request([Message.user("2+5?"), response.message, Message.tool(c, "7")], tools=[ADD])
    sent = llm_server.requests[1].body["messages"]
    assert json.loads(sent[2]["content"])["tool"] == "add" and sent[2]["role"] == "assistant"
    assert sent[3]["role"] == "user" and sent[3]["content"].startswith("Observation from add: 7\n")


def test_constrained_action_schema_moves_each_tools_defs_to_the_root() -> None:
    from agentflow.models.base import ToolSpec
    from agentflow.models.openai import action_schema

    def spec(name: str, step: dict[str, Any]) -> ToolSpec:
        return ToolSpec(name=name, parameters={"type": "object", "properties": {"s": {"$ref": "#/$defs/Step"}},
                                               "$defs": {"Step": step}})

    one = {"type": "object", "properties": {"id": {"type": "string"}}}
    other = {"type": "object", "properties": {"n": {"type": "integer"}}}
    schema = action_schema([spec("plan", one), spec("same", one), spec("clash", other)])
    args = [a["properties"]["arguments"] for a in schema["anyOf"]]
    assert all("$defs" not in a for a in args)
    assert [a["properties"]["s"]["$ref"] for a in args] == ["#/$defs/Step", "#/$defs/Step", "#/$defs/clash__Step"]
    assert schema["$defs"] == {"Step": one, "clash__Step": other}


async def test_agent_end_to_end_through_the_sdk(llm_server: LLMServer) -> None:
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    llm_server.add(openai_reply(None, [("c1", "multiply", {"a": 17, "b": 23})]),
                   openai_reply(None, [("c2", "finish", {"answer": "391"})]))
    agent = Agent("calc", "Use tools.", tools=[multiply], model=model(llm_server))
    result = await agent.run("What is 17*23?")
    assert result.output == "391" and result.usage.requests == 2
    tool_msg = llm_server.requests[1].body["messages"][-1]
    assert tool_msg == {"role": "tool", "tool_call_id": "c1", "content": "391"}
    assert [t["function"]["name"] for t in llm_server.requests[0].body["tools"]] == ["multiply", "finish"]


def test_one_model_serves_several_event_loops(llm_server: LLMServer) -> None:
    """An SDK client belongs to one loop; run_sync twice must not hit 'Event loop is closed'."""
    llm_server.add(openai_reply(None, [("c1", "finish", {"answer": "a"})]),
                   openai_reply(None, [("c2", "finish", {"answer": "b"})]))
    agent = Agent("a", model=model(llm_server))
    assert agent.run_sync("one").output == "a"
    assert agent.run_sync("two").output == "b"


async def test_a_reply_that_is_not_json_is_retried_then_named(llm_server: LLMServer) -> None:
    llm_server.add(Reply(raw=b'{"choices": [{"mess'), openai_reply("recovered"))
    assert (await model(llm_server).request([Message.user("hi")])).message.content == "recovered"
    llm_server.add(*[Reply(raw=b"<html>502 Bad Gateway</html>") for _ in range(3)])
    with pytest.raises(ModelError) as info:
        await model(llm_server).request([Message.user("hi")])
    text = str(info.value)
    assert "is not a JSON object after 3 attempts" in text and "<html>502" in text and "Fix:" in text


STREAM = [(None, _chunk({"role": "assistant", "content": "Half "})), (None, _chunk({"content": "done."})),
          (None, _chunk({}, "stop")), (None, "[DONE]")]


async def test_a_stream_cut_before_its_first_event_is_retried(llm_server: LLMServer) -> None:
    llm_server.add(Reply(sse=STREAM, cut_after=0), Reply(sse=STREAM))
    events = [e async for e in model(llm_server).stream([Message.user("hi")])]
    assert events[-1].message.content == "Half done." and len(llm_server.requests) == 2  # type: ignore[union-attr]


async def test_a_stream_cut_midway_is_a_model_error_not_a_transport_one(llm_server: LLMServer) -> None:
    llm_server.add(Reply(sse=STREAM, cut_after=1))
    shown: list[str] = []
    with pytest.raises(ModelError) as info:
        async for event in model(llm_server).stream([Message.user("hi")]):
            shown += [event.text] if isinstance(event, TextDelta) else []
    assert shown == ["Half "] and len(llm_server.requests) == 1  # what was shown is not shown again
    assert "the reply stream from" in str(info.value) and "was cut" in str(info.value) and "Fix:" in str(info.value)
