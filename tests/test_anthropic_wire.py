"""The real `anthropic` SDK against a local server speaking the Messages API."""

from __future__ import annotations

import json

import pytest

from agentflow import Agent, ConfigError, Message, ModelError, TextDelta, ToolCallDelta, get_model, tool
from agentflow.models import ModelSettings, OutputSpec, RetryPolicy, ToolSpec
from agentflow.models.anthropic import AnthropicModel
from tests.llm_server import LLMServer, Reply, anthropic_reply, error_reply

FAST = RetryPolicy(attempts=3, initial_delay=0.01)
WEATHER = ToolSpec(name="weather", description="Weather in a city.",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False})


def model(server: LLMServer) -> AnthropicModel:
    return AnthropicModel("claude-haiku-4-5", base_url=server.url, api_key="sk-ant-test", retry=FAST)


async def test_text_reply_system_and_usage(llm_server: LLMServer) -> None:
    llm_server.add(anthropic_reply("Bonjour", input_tokens=100, output_tokens=20, cache_read=50))
    response = await model(llm_server).request(
        [Message.system("Answer in French."), Message.user("Hello")], settings=ModelSettings(temperature=0.2))
    assert response.message.content == "Bonjour" and response.finish_reason == "stop"
    u = response.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens) == (150, 20, 50)
    assert u.cost == pytest.approx((100 * 1.0 + 50 * 0.10 + 20 * 5.0) / 1e6)  # claude-haiku-4-5 prices
    sent = llm_server.requests[0]
    assert sent.path == "/v1/messages"
    # the SDK's own auth header (anthropic 2.x sends the key as a bearer token)
    assert "sk-ant-test" in (sent.headers.get("x-api-key", "") + sent.headers.get("authorization", ""))
    assert "anthropic-version" in sent.headers
    assert sent.body == {"model": "claude-haiku-4-5", "max_tokens": 4096, "system": "Answer in French.",
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
                         "temperature": 0.2}


async def test_parallel_tool_use_and_results_merge_into_one_user_turn(llm_server: LLMServer) -> None:
    llm_server.add(anthropic_reply("Checking.", [("t1", "weather", {"city": "Oslo"}),
                                                 ("t2", "weather", {"city": "Rome"})]),
                   anthropic_reply("Cold and warm."))
    m = model(llm_server)
    first = await m.request([Message.user("weather?")], tools=[WEATHER],
                            settings=ModelSettings(tool_choice="required"))
    calls = first.message.tool_calls
    assert [c.parsed_arguments()["city"] for c in calls] == ["Oslo", "Rome"]
    assert first.finish_reason == "tool_calls" and first.message.content == "Checking."
    body = llm_server.requests[0].body
    assert body["tools"] == [{"name": "weather", "description": "Weather in a city.",
                              "input_schema": WEATHER.parameters}]
    assert body["tool_choice"] == {"type": "any"}
    await m.request([Message.user("weather?"), first.message, Message.tool(calls[0], "-3C"),
                     Message.tool(calls[1], "24C")], tools=[WEATHER])
    sent = llm_server.requests[1].body["messages"]
    assert sent[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "t2", "name": "weather", "input": {"city": "Rome"}}]}
    assert sent[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "-3C"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "24C"}]}


async def test_structured_output_is_a_forced_tool(llm_server: LLMServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    llm_server.add(anthropic_reply(None, [("t1", "City", {"city": "Paris"})]))
    response = await model(llm_server).request([Message.user("capital of France")],
                                               output=OutputSpec(name="City", schema_=schema))
    assert json.loads(response.message.content or "") == {"city": "Paris"} and not response.message.tool_calls
    body = llm_server.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "City"}
    assert body["tools"][0]["input_schema"] == schema


async def test_streaming_text_and_tool_use_deltas(llm_server: LLMServer) -> None:
    llm_server.add(Reply(sse=[
        ("message_start", {"type": "message_start", "message": {
            "id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Looking "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "it up."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "t1", "name": "weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"city": '}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 25}}),
        ("message_stop", {"type": "message_stop"}),
    ]))
    events = [e async for e in model(llm_server).stream([Message.user("weather in Oslo")], tools=[WEATHER])]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Looking it up."
    assert [e.name for e in events if isinstance(e, ToolCallDelta)][0] == "weather"
    final = events[-1]
    assert final.message.tool_calls[0].parsed_arguments() == {"city": "Oslo"}  # type: ignore[union-attr]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 25)  # type: ignore[union-attr]
    assert final.finish_reason == "tool_calls"  # type: ignore[union-attr]
    assert llm_server.requests[0].body["stream"] is True


async def test_overloaded_and_rate_limited_are_retried(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(529, "Overloaded"), error_reply(429, "rate", {"retry-after": "0"}),
                   anthropic_reply("fine"))
    assert (await model(llm_server).request([Message.user("hi")])).message.content == "fine"
    assert len(llm_server.requests) == 3


async def test_401_names_the_key(llm_server: LLMServer) -> None:
    llm_server.add(error_reply(401, "invalid x-api-key"))
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY") as info:
        await model(llm_server).request([Message.user("hi")])
    assert info.value.provider == "anthropic" and len(llm_server.requests) == 1


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        get_model("anthropic:claude-haiku-4-5")


async def test_agent_end_to_end(llm_server: LLMServer) -> None:
    @tool
    def weather(city: str) -> str:
        """Weather in a city."""
        return {"Oslo": "-3C"}.get(city, "unknown")

    llm_server.add(anthropic_reply(None, [("t1", "weather", {"city": "Oslo"})]),
                   anthropic_reply(None, [("t2", "finish", {"answer": "It is -3C in Oslo."})]))
    result = await Agent("w", "Use tools.", tools=[weather], model=model(llm_server)).run("Weather in Oslo?")
    assert result.output == "It is -3C in Oslo." and result.usage.requests == 2
    last = llm_server.requests[1].body["messages"][-1]
    assert last == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "-3C"}]}


async def test_a_reply_that_is_not_json_is_retried(llm_server: LLMServer) -> None:
    llm_server.add(Reply(raw=b"[1, 2]"), anthropic_reply("recovered"))
    assert (await model(llm_server).request([Message.user("hi")])).message.content == "recovered"
    assert len(llm_server.requests) == 2


async def test_a_stream_cut_midway_is_a_model_error(llm_server: LLMServer) -> None:
    llm_server.add(Reply(sse=[
        ("message_start", {"type": "message_start", "message": {
            "id": "m", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("message_stop", {"type": "message_stop"}),
    ], cut_after=2))
    with pytest.raises(ModelError) as info:
        _ = [e async for e in model(llm_server).stream([Message.user("hi")])]
    assert "was cut" in str(info.value) and info.value.provider == "anthropic"
