"""API keys appear nowhere a user or an operator can read: logs at DEBUG, errors, events, journals, transcripts.

The keys are set to a marker in the environment, as a user sets them, and every kind of run goes through
the real `openai` and `anthropic` SDKs to a local server, a failing one too. The failing server echoes
the key it was sent in its error message, as some providers do in part: the error must not carry it.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentflow import (
    Agent,
    Conversation,
    ModelError,
    Supervisor,
    UserProxy,
    durable,
    tool,
)
from agentflow.models import RetryPolicy
from agentflow.models.anthropic import AnthropicModel
from agentflow.models.openai import OpenAIModel
from agentflow.workflow import Workflow, task
from tests.llm_server import LLMServer, anthropic_reply, error_reply, openai_reply

MARKER = "sk-MARKER-7f3a9c2e1b"
ROOT = Path(__file__).resolve().parent.parent
FAST = RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    monkeypatch.setenv("OPENAI_API_KEY", MARKER)
    monkeypatch.setenv("ANTHROPIC_API_KEY", MARKER)
    caplog.set_level(logging.DEBUG)  # every logger, the SDKs' and httpx's included
    return caplog


def openai(server: LLMServer) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", base_url=server.url + "/v1", retry=FAST)  # the key comes from the environment


def echoing_401(server: LLMServer, times: int = 2) -> None:
    """A provider that quotes the key it was given in its error."""
    server.add(*[error_reply(401, f"Incorrect API key provided: {MARKER}") for _ in range(times)])


def clean(where: str, text: str) -> None:
    assert MARKER not in text, f"the key appears in {where}: ...{text[max(0, text.find(MARKER) - 80):][:200]}"


async def collect(stream: Any) -> str:
    events = [e async for e in stream]
    return "\n".join(e.model_dump_json() for e in events)


async def test_no_run_of_any_kind_shows_the_key(llm_server: LLMServer, keys: pytest.LogCaptureFixture) -> None:
    sent: list[str] = []
    # a tool agent
    llm_server.add(openai_reply(tool_calls=[("c1", "add", {"a": 2, "b": 3})]),
                   openai_reply(tool_calls=[("c2", "finish", {"answer": "5"})]))
    stream = Agent("adder", tools=[add], model=openai(llm_server)).stream("add 2 and 3")
    sent.append(await collect(stream))
    sent.append(repr(stream.result))
    assert stream.result.output == "5"
    # a supervisor routing to it
    llm_server.add(openai_reply(tool_calls=[("s1", "adder", {"task": "add 2 and 3"})]),
                   openai_reply(tool_calls=[("c1", "finish", {"answer": "5"})]),
                   openai_reply(tool_calls=[("s2", "finish", {"answer": "It is 5."})]))
    boss = Supervisor([Agent("adder", tools=[add], model=openai(llm_server), description="adds")],
                      model=openai(llm_server))
    stream = boss.stream("What is 2+3?")
    sent.append(await collect(stream))
    assert stream.result.output == "It is 5."
    # a workflow
    llm_server.add(openai_reply("A haiku."))
    @task("Write a haiku about {topic}.")
    async def haiku(topic: str) -> str: ...

    flow = Workflow(haiku, model=openai(llm_server))
    sent.append(repr(await flow.run(topic="rain")))
    # a conversation, on Anthropic's wire
    llm_server.add(anthropic_reply("Please add 2 and 3."), anthropic_reply("5"),
                   anthropic_reply(tool_uses=[("v", "finish", {"summary": "ok", "goal_met": True, "result": "5"})]))
    claude = AnthropicModel("claude-haiku-4-5", base_url=llm_server.url, retry=FAST)
    talk = await Conversation(Agent("assistant", model=claude), UserProxy("Know 2+3.", model=claude)).run()
    sent += [talk.summary(), repr(talk)]
    assert talk.output == "5"
    # failing runs: OpenAI's wire and Anthropic's
    echoing_401(llm_server)
    with pytest.raises(ModelError) as openai_failed:
        await Agent("adder", tools=[add], model=openai(llm_server)).run("add")
    echoing_401(llm_server)
    with pytest.raises(ModelError) as anthropic_failed:
        await Agent("adder", model=AnthropicModel("claude-haiku-4-5", base_url=llm_server.url, retry=FAST)).run("x")
    for failed in (openai_failed.value, anthropic_failed.value):
        sent += [str(failed), repr(failed), repr(getattr(failed, "result", None))]
        assert "401" in str(failed) or "Incorrect API key" in str(failed)  # the error is still told
    # The key did reach the server (the runs used it), and it is nowhere else.
    assert any(MARKER in (r.headers.get("authorization", "") + r.headers.get("x-api-key", ""))
               for r in llm_server.requests)
    for n, text in enumerate(sent):
        clean(f"output {n}", text)
    clean("the logs", "\n".join(f"{r.name}: {r.getMessage()} {r.args!r}" for r in keys.records))
    assert any(r.levelno == logging.DEBUG for r in keys.records)  # DEBUG logging was on and said things


async def test_durable_runs_keep_no_key_in_their_journal_or_their_listing(
        llm_server: LLMServer, keys: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    durable.registry.entries.clear()
    good = Agent("adder", tools=[add], model=openai(llm_server))
    bad = Agent("broken", tools=[add], model=openai(llm_server))
    rt = durable.launch(f"sqlite:///{db}", targets=[good, bad])
    try:
        llm_server.add(openai_reply(tool_calls=[("c1", "add", {"a": 2, "b": 3})]),
                       openai_reply(tool_calls=[("c2", "finish", {"answer": "5"})]))
        run = await rt.start(good, "add 2 and 3", id="good-run")
        assert (await run.result()).output == "5"
        echoing_401(llm_server)
        failed = await rt.start(bad, "add 2 and 3", id="bad-run")
        with pytest.raises(Exception) as caught:
            await failed.result()
        clean("the durable error", f"{caught.value!s} {caught.value!r}")
    finally:
        rt.shutdown()
    with sqlite3.connect(db) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 (names from the schema)
            clean(f"table {table}", repr(rows))
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": MARKER, "ANTHROPIC_API_KEY": MARKER}
    for args in (("runs", "list"), ("runs", "show", "good-run"), ("runs", "show", "bad-run")):
        done = subprocess.run([sys.executable, "-m", "agentflow.cli", *args, "--db", f"sqlite:///{db}"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 1), done.stderr
        clean(f"agentflow {' '.join(args)}", done.stdout + done.stderr)
    assert "good-run" in subprocess.run([sys.executable, "-m", "agentflow.cli", "runs", "list", "--db",
                                         f"sqlite:///{db}"], cwd=ROOT, env=env, capture_output=True, text=True,
                                        timeout=120).stdout
    clean("the logs", "\n".join(f"{r.name}: {r.getMessage()}" for r in keys.records))

