"""Every example runs offline (its stand-in models) to a successful end, with the same Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STAND_IN = "(using an offline stand-in"


def run_example(name: str, *args: str) -> str:
    """Run examples/`name` with no model configured; its stdout, after checking it exited with 0."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_")) and k != "AGENTFLOW_MODEL"}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=EXAMPLES, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{name} exited with {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_example_is_covered() -> None:
    covered = {"quickstart.py", "calculator.py", "shopify_worklist.py", "plan_count_lines.py",  # test_examples.py
               "lotr_chain.py", "home_towns.py", "shopify_dag.py",  # test_workflow_examples.py
               "pattern_chain.py", "pattern_routing.py", "pattern_parallel.py", "pattern_orchestrator.py",
               "pattern_optimizer.py", "state_workflow.py",  # test_pattern_examples.py
               "durable_deploy.py", "travel_assistant.py",  # test_examples.py
               "math_tutor_pair.py", "writer_critic.py", "trip_group_chat.py", "mcp_weather.py"}  # test_examples.py
    assert {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")} == covered


def test_quickstart() -> None:
    out = run_example("quickstart.py")
    assert STAND_IN in out and "stop: finish" in out
    files = sorted(EXAMPLES.glob("*.py"))
    longest = max(files, key=lambda p: len(p.read_text().splitlines())).name
    assert f"answer: files={len(files)} total_lines={sum(len(p.read_text().splitlines()) for p in files)} " \
           f"longest_file='{longest}'" in out
    assert "supervisor/counter <- " in out and "supervisor/finder <- " in out
    assert "checked against the files themselves: right" in out


def test_travel_assistant_remembers_across_a_server_restart_and_books_after_approval() -> None:
    out = run_example("travel_assistant.py")
    assert STAND_IN in out and "(the server dies; a new one starts on the same database)" in out
    assert "remembered Berlin after the restart: yes" in out
    assert re.search(r"booked after approval: \['(\w+)'\] \(the cheapest found: \1\)", out)
    assert "checked: right" in out


def test_mcp_weather_uses_the_tools_of_an_mcp_server() -> None:
    out = run_example("mcp_weather.py")
    assert STAND_IN in out and "tools from the MCP server: temperature, to_fahrenheit" in out
    assert 'answer: {"oslo_f": 39.2, "lima_f": 66.2}' in out
    assert "checked against the server's readings (Oslo 4 C = 39.2 F, Lima 19 C = 66.2 F): right" in out


@pytest.mark.skip(reason="calculator.py has no stand-in model: without a configured model it exits 2 by design")
def test_calculator() -> None:
    run_example("calculator.py")


def test_shopify_worklist() -> None:
    out = run_example("shopify_worklist.py")
    assert STAND_IN in out
    for n in (1, 2, 3):
        for task in ("read", "idea", "email", "send"):
            assert re.search(rf"worklist done +{task}-{n} ", out), f"{task}-{n} did not finish"
    assert re.search(r"worklist added +email-1 +\(copywriter\) after read-1, idea-1", out)
    assert "approve send_email?" in out
    assert "SENDING to dana@happy-feet.example: Sock-cess Stories for Happy Feet Socks" in out
    assert out.count("SENDING to ") == 3 and "emails sent: 3" in out
    assert "answer:\nEmailed dana@happy-feet.example: Sock-cess Stories" in out


def test_shopify_worklist_with_fewer_stores() -> None:
    out = run_example("shopify_worklist.py", "--stores", "1")
    assert out.count("SENDING to ") == 1 and "read-2" not in out


def test_plan_count_lines_answers_the_true_total() -> None:
    out = run_example("plan_count_lines.py")
    assert STAND_IN in out
    assert "  count  counter  Count the lines of each of these files.   (needs find)" in out  # the plan, shown
    assert out.index("plan: ") < out.index("step find   started")  # ... before it runs
    assert re.search(r"step sum +done", out)
    total = re.search(r"total: (\d+) \(true total, counted in Python: (\d+)\)", out)
    assert total is not None and total[1] == total[2] and int(total[1]) > 0


def test_plan_count_lines_in_a_given_directory(tmp_path: Path) -> None:
    for name, lines in {"a.ipynb": 3, "b.ipynb": 5, "notes.txt": 100}.items():
        (tmp_path / name).write_text("x\n" * lines)
    out = run_example("plan_count_lines.py", "--dir", str(tmp_path))
    assert "total: 8 (true total, counted in Python: 8)" in out


def test_durable_deploy_waits_across_a_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/runs.db"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_")) and k != "AGENTFLOW_MODEL"}
    first = subprocess.Popen([sys.executable, str(EXAMPLES / "durable_deploy.py"), "--db", db], cwd=EXAMPLES, env=env,
                             stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    lines = iter(first.stdout.readline, "")
    assert any(line.startswith("waiting: May release call deploy") for line in lines)
    first.kill()  # the program dies while the run waits for a person
    first.wait()
    out = run_example("durable_deploy.py", "--db", db, "--approve")
    assert "(resumed: it was still waiting)" in out and "answer: Done: billing 2.4.1 is live." in out
    assert "model calls: 2;" in out
    assert re.search(r"home_town +edited\n +home_town~2 +reused\n +distance +done", out)
    assert "between Sedgefield and Pretoria" in out and "model calls: first run 3, re-run 1" in out


def test_math_tutor_pair_ends_with_the_assistants_tests_passing(tmp_path: Path) -> None:
    out = run_example("math_tutor_pair.py", "--dir", str(tmp_path))
    assert STAND_IN in out
    assert "code_assistant: I wrote tutor.py" in out and "user_proxy: Good. What happens" in out
    assert 'run_tests({}) → exit code 0' in out  # the assistant ran its tests in the conversation
    assert "ended: finish by user_proxy (goal met)" in out
    assert "the assistant's tests, run again: PASSED" in out and "4 passed" in out
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["test_tutor.py", "tutor.py"]
    # the tutor really works as a command-line program: right and wrong answers, a non-number, the score
    done = subprocess.run([sys.executable, "-c", "import random, tutor; tutor.main(rounds=3, rng=random.Random(1))"],
                          cwd=tmp_path, input="5\nabc\n7\n", capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Score: " in done.stdout and "Not quite" in done.stdout


def test_writer_critic_improves_the_text() -> None:
    out = run_example("writer_critic.py")
    assert STAND_IN in out
    first, better = out.index("writer: Our new hiking socks"), out.index("writer: Meet Trailblaze Merino")
    assert first < out.index("critic: Too vague") < better < out.index("critic called finish")
    assert re.search(r"final text \(5\d words\):\nMeet Trailblaze Merino", out)
    assert re.search(r"^writer +2 +0 +\d+ +\$0\.0000$", out, re.M)  # the summary: who, turns, tools, tokens, cost


def test_trip_group_chat_plans_the_trip() -> None:
    out = run_example("trip_group_chat.py")
    assert STAND_IN in out
    speakers = re.findall(r"^→ (\w+) speaks \(manager\)$", out, re.M)
    assert speakers == ["navigator", "local_guide", "budgeter", "navigator"]
    assert 'calculator({"expression": "3*110 + 3*2*35 + 90 + 40"}) → 670' in out
    assert "ended: finish by navigator (goal met)" in out
    assert "  - Day 3: Sintra by train" in out and "total: 670 EUR" in out
    assert re.search(r"^manager +0 +0 +\d+", out, re.M)  # the manager's calls are counted too
