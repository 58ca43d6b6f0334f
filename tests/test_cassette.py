"""Record and replay (agentflow.testing): a run recorded once replays offline, the same, and a changed
request fails loudly with the difference; cassettes hold no key; the pytest fixture records then replays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow import Agent, ConfigError, FunctionModel, Supervisor, TextChunk, tool
from agentflow.models import RetryPolicy
from agentflow.models.openai import OpenAIModel
from agentflow.models.scripted import RequestInfo, call
from agentflow.testing import CassetteMismatch, record, replay
from tests.llm_server import LLMServer, Reply

ROOT = Path(__file__).resolve().parent.parent


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def adder_model() -> FunctionModel:
    def reply(info: RequestInfo) -> object:
        if info.last.role == "tool":
            return call("finish", answer=f"it is {info.last.content}")
        return call("add", a=2, b=3)
    return FunctionModel(reply)


def refuses(info: RequestInfo) -> object:
    raise AssertionError("a replay called the real model")


async def test_a_recorded_run_replays_offline_the_same(tmp_path: Path) -> None:
    path = tmp_path / "adder.jsonl"
    first = await Agent("adder", tools=[add], model=record(adder_model(), path)).run("add 2 and 3")
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["agentflow_cassette"] == 1 and len(lines) == 3  # a header and two calls
    model = replay(path)
    again = await Agent("adder", tools=[add], model=model).run("add 2 and 3")
    assert again.output == first.output == "it is 5" and model.unserved == 0
    assert again.usage.input_tokens == first.usage.input_tokens and again.usage.requests == 2


async def test_a_changed_request_fails_naming_the_call_and_showing_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "adder.jsonl"
    await Agent("adder", "Add things.", tools=[add], model=record(adder_model(), path)).run("add 2 and 3")
    with pytest.raises(CassetteMismatch) as info:
        await Agent("adder", "Add things.", tools=[add], model=replay(path)).run("add 2 and 4")
    text = str(info.value)
    assert "model call 1 does not match call 1 of" in text and "Fix: record the cassette again" in text
    diff = text.splitlines()
    assert any(line.startswith("-") and '"add 2 and 3"' in line for line in diff)
    assert any(line.startswith("+") and '"add 2 and 4"' in line for line in diff)
    # a change it is told to ignore
    changed = Agent("adder", "Add numbers, carefully.", tools=[add], model=replay(path, ignore=["system"]))
    assert (await changed.run("add 2 and 3")).output == "it is 5"
    with pytest.raises(CassetteMismatch):
        await Agent("adder", "Add numbers, carefully.", tools=[add], model=replay(path)).run("add 2 and 3")
    with pytest.raises(ConfigError, match="cannot be ignored"):
        replay(path, ignore=["messages"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="there is no cassette at"):
        replay(tmp_path / "missing.jsonl")


async def test_calls_made_concurrently_replay_in_any_order(tmp_path: Path) -> None:
    def reply(info: RequestInfo) -> object:
        if info.last.role == "tool":
            return call("finish", answer=" + ".join(m.content or "" for m in info.messages if m.role == "tool"))
        if "you run" in (info.messages[0].content or "") or info.tool_names[0] == "a":
            return [call("a", task="one"), call("b", task="two")]
        return call("finish", answer=f"done {info.last.content}")

    def team(model: object) -> Supervisor[str]:
        return Supervisor([Agent("a", model=model, description="a"), Agent("b", model=model, description="b")],  # type: ignore[arg-type]
                          model=model)  # type: ignore[arg-type]

    path = tmp_path / "team.jsonl"
    first = await team(record(FunctionModel(reply), path)).run("do both")
    header, *calls = path.read_text().splitlines()
    calls[1], calls[2] = calls[2], calls[1]  # the two workers' calls, in the other order
    path.write_text("\n".join([header, *calls]) + "\n")
    assert (await team(replay(path)).run("do both")).output == first.output


async def test_a_streamed_run_through_the_sdk_replays_its_deltas_and_usage_and_keeps_no_key(
        llm_server: LLMServer, tmp_path: Path) -> None:
    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    llm_server.add(Reply(sse=[(None, chunk({"role": "assistant", "content": "Hel"})), (None, chunk({"content": "lo"})),
                              (None, chunk({}, "stop")),
                              (None, {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                      "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2,
                                                               "total_tokens": 11}}), (None, "[DONE]")]))
    key = "sk-SECRET-cassette-42"
    real = OpenAIModel("gpt-4o-mini", base_url=llm_server.url + "/v1", api_key=key, retry=RetryPolicy(attempts=1),
                       headers={"X-Team": "secret-header-value"})
    path = tmp_path / "stream.jsonl"
    stream = Agent("greeter", model=record(real, path), ends_with="text").stream("hi", deltas=True)
    chunks = [e.text async for e in stream if isinstance(e, TextChunk)]
    assert chunks == ["Hel", "lo"] and llm_server.requests[0].headers["authorization"] == f"Bearer {key}"
    text = path.read_text()
    assert key not in text and "secret-header-value" not in text and "authorization" not in text.lower()
    again = Agent("greeter", model=replay(path), ends_with="text").stream("hi", deltas=True)
    assert [e.text async for e in again if isinstance(e, TextChunk)] == ["Hel", "lo"]
    assert again.result.output == "Hello" and again.result.usage.input_tokens == 9
    assert len(llm_server.requests) == 1  # the replay sent nothing


FIXTURE_TEST = '''
from agentflow import Agent, FunctionModel
from agentflow.models.scripted import call

def reply(info):
    {body}

def test_greets(agent_cassette):
    model = agent_cassette(FunctionModel(reply))
    assert Agent("greeter", "{instructions}", model=model).run_sync("hi").output == "hello"
'''


def run_pytest(folder: Path, body: str, instructions: str = "Greet.", **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_greet.py").write_text(FIXTURE_TEST.format(body=body, instructions=instructions))
    import os
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)], cwd=folder,
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def test_the_fixture_records_once_then_replays_and_fails_on_a_change(tmp_path: Path) -> None:
    recorded = run_pytest(tmp_path, 'return call("finish", answer="hello")')
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    cassette = tmp_path / "cassettes" / "test_greets.jsonl"
    assert cassette.exists() and len(cassette.read_text().splitlines()) == 2
    replayed = run_pytest(tmp_path, 'raise AssertionError("the real model was called")')
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr  # served from the cassette
    changed = run_pytest(tmp_path, 'raise AssertionError("the real model was called")', instructions="Greet warmly.")
    assert changed.returncode == 1 and "CassetteMismatch" in changed.stdout and "Greet warmly." in changed.stdout
    cassette.unlink()
    missing = run_pytest(tmp_path, 'return call("finish", answer="hello")', AGENTFLOW_CASSETTES="replay")
    assert missing.returncode == 1 and "there is no cassette at" in missing.stdout
