"""The five workflow patterns of the lesson (and its typed-state style) run offline to the right end."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from agentflow import FunctionModel
from tests.llm_server import LLMServer, Reply, openai_reply
from tests.test_examples import EXAMPLES, STAND_IN, run_example

POINTS = ["What AI agents are", "How AI agents work", "Where AI agents help today",
          "What to watch out for with AI agents"]


def test_chain_feeds_each_output_to_the_next_task() -> None:
    out = run_example("pattern_chain.py")
    assert STAND_IN in out and "workflow content: outline -> draft -> polish" in out
    outline, draft, polish = (out.index(f"\n{name} (") for name in ("outline", "draft", "polish"))
    assert outline < draft < polish
    assert "  " + "\n  ".join(f"{i}. {p}" for i, p in enumerate(POINTS, 1)) in out[outline:draft]
    assert "Part 4, basically: What to watch out for with AI agents." in out[draft:polish]  # the draft of the outline
    final = out[polish:]
    assert "basically" not in final and "AI agents: an article in 4 parts. Part 1: What AI agents are." in final
    assert "model calls: 3 " in out


def test_chain_takes_the_topic_as_run_input() -> None:
    out = run_example("pattern_chain.py", "--topic", "tide pools")
    assert "2. How tide pools work" in out and "tide pools: an article in 4 parts. Part 1: What tide pools are." in out


def test_routing_sends_each_query_to_its_specialist() -> None:
    out = run_example("pattern_routing.py")
    assert STAND_IN in out
    expected = {"My app crashes every time I upload a photo": ("technical", "technical support specialist"),
                "I was charged twice for my subscription this month": ("billing", "billing specialist"),
                "What are your opening hours on public holidays": ("general", "friendly customer service")}
    blocks = out.split("query:  ")[1:]
    assert len(blocks) == 3
    for block, (query, (branch, voice)) in zip(blocks, expected.items(), strict=True):
        assert block.startswith(query)
        assert re.search(rf"^route:  {branch} -> {branch} .*, 2 model calls\)$", block, re.MULTILINE), block
        assert f"answer: As a {voice}" in block and f"about '{query}" in block  # its system prompt; the query


def test_parallel_classifies_every_email_with_overlapping_calls() -> None:
    out = run_example("pattern_parallel.py")
    assert STAND_IN in out
    labels = re.findall(r"^(urgent|spam|normal) +\S", out, re.MULTILINE)
    assert labels == ["urgent", "spam", "normal", "urgent", "spam"]  # in the emails' order
    timing = re.search(r"5 calls: wall time ([\d.]+)s, the calls' times add up to ([\d.]+)s = ([\d.]+)x the wall "
                       r"time: they overlapped", out)
    assert timing is not None, out
    wall, busy = float(timing[1]), float(timing[2])
    assert busy >= 1.5 and wall < busy / 3  # five 0.3 s calls at once, not one after another


@pytest.mark.parametrize("topic", ["AI safety", "solar power"])
def test_orchestrator_decomposes_researches_and_synthesizes(topic: str) -> None:
    out = run_example("pattern_orchestrator.py", "--task", f"Research {topic}")
    assert STAND_IN in out
    subtasks = re.findall(r"^- (.+)\n    Finding on '(.+?)'", out, re.MULTILINE)
    assert [s for s, _ in subtasks] == [f"What are the main ethical concerns of {topic}?",
                                        f"What are the technical challenges of {topic}?",
                                        f"Which solutions to {topic} problems exist today?"]
    assert all(subtask == researched for subtask, researched in subtasks)  # each worker got its own subtask
    report = out.split("report:\n", 1)[1]
    assert report.startswith("  Report (3 findings): ")
    assert all(f"Finding on '{s}'" in report for s, _ in subtasks)  # in the subtasks' order
    assert [report.index(s) for s, _ in subtasks] == sorted(report.index(s) for s, _ in subtasks)
    assert "model calls: 5 " in out


def test_optimizer_stops_once_the_score_reaches_8() -> None:
    out = run_example("pattern_optimizer.py")
    assert STAND_IN in out
    assert re.findall(r"^attempt (\d): score (\d+)/10", out, re.MULTILINE) == [("1", "4"), ("2", "9")]
    assert "attempt 1: score 4/10 - Exponential recursion: use a loop, and reject negative n." in out
    assert "loop: until was met after 2 iteration(s)" in out
    code = out.split("final code (score 9):\n", 1)[1]
    assert 'raise ValueError("n must be non-negative")' in code and "fibonacci(n - 1)" not in code
    assert "model calls: 4 " in out


def test_state_workflows_run_the_chain_and_stop_the_optimizer_by_its_state() -> None:
    out = run_example("state_workflow.py")
    assert STAND_IN in out
    assert "content: create_outline done   check_outline done   write_draft done   polish_content done" in out
    assert "    AI agents: an article in 4 parts. Part 1: What AI agents are." in out
    assert "  model calls: 3\n" in out  # the tasks awaited inside the steps count towards the run
    assert "codegen: scores [4, 9], stopped by optimize_loop (should_continue=False)" in out
    assert '        raise ValueError("n must be non-negative")' in out
    assert out.rstrip().endswith("model calls: 4")


def test_state_chain_gate_ends_the_run_on_a_short_outline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in ("state_workflow", "pattern_chain", "pattern_optimizer", "_setup"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import state_workflow as sw  # type: ignore[import-not-found]

    asked: list[str] = []

    def writer(info: Any) -> str:
        asked.append(info.last.content or "")
        return "1. Everything about AI agents"

    chain = sw.Workflow[sw.ChainState](sw.create_outline, sw.check_outline, sw.write_draft, sw.polish_content,
                                       model=FunctionModel(writer))
    result = chain.run_sync(sw.ChainState(topic="AI agents"))
    assert [(r.task, r.status) for r in result.records] == [
        ("create_outline", "done"), ("check_outline", "done"), ("write_draft", "skipped"),
        ("polish_content", "skipped")]
    assert result.stopped_by == "check_outline" and len(asked) == 1
    assert result.output.note == "the outline has 1 points; 3 are needed" and result.output.final == ""


def test_routing_on_a_constrained_openai_compatible_server(llm_server: LLMServer) -> None:
    """The llama-server way (--constrained): every reply is a JSON action, the router's is held to the Literal."""
    def finish(**arguments: Any) -> Reply:
        return openai_reply(json.dumps({"thought": "", "tool": "finish", "arguments": arguments}))

    llm_server.add(finish(category="billing"), openai_reply("Restart the app, then update it."),  # text tasks: text
                   finish(category="billing"), openai_reply("The second charge will be refunded."),
                   finish(category="general"), openai_reply("We open at 10 on holidays."))
    out = run_example("pattern_routing.py", "--base-url", llm_server.url + "/v1", "--constrained")
    assert STAND_IN not in out
    assert re.findall(r"^route:  (\w+) -> (\w+)", out, re.MULTILINE) == [
        ("billing", "billing"), ("billing", "billing"), ("general", "general")]  # the model's choice, not a keyword's
    assert "answer: The second charge will be refunded." in out
    classify, answer = (r.body for r in llm_server.requests[:2])
    assert '"category": {"enum": ["technical", "billing", "general"]' in json.dumps(classify["response_format"])
    assert classify["messages"][-1]["content"].endswith("Query: My app crashes every time I upload a photo. "
                                                        "How do I fix it?")
    assert answer["messages"][0]["content"].startswith("You are a billing specialist.")
    assert "response_format" not in answer and "tools" not in answer  # a text task with no tools asks for text
    assert answer["messages"][-1]["content"] == "My app crashes every time I upload a photo. How do I fix it?"
