"""`agentflow chat` in a real pseudo-terminal, driven as a person would: typed messages, slash
commands, an approval prompt, a plan edited before it runs, a live task table, Ctrl-C, Ctrl-D.
The model is tests/chat_model.py (see its docstring for what each message makes it do)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.terminal import CHAT_MODEL, Terminal


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Terminal]:
    terms: list[Terminal] = []

    def start(*args: str) -> Terminal:
        term = Terminal(["chat", "--model", CHAT_MODEL, *args], tmp_path)
        terms.append(term)
        term.wait_for("you>")
        return term

    yield start  # type: ignore[misc]
    for term in terms:
        if term.child.isalive():
            term.child.terminate(force=True)


def test_streams_the_reply_shows_sub_agents_nested_and_counts_cost(chat) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--persona", "tutor,coder")
    term.type("hello there")
    screen = term.wait_for("assistant: Hello there!")
    assert "watch them arrive." not in screen  # the reply shows in pieces as it is generated...
    term.wait_for("watch them arrive.")  # ...and then whole
    term.prompt(2)

    term.type("compute it")
    screen = term.wait_for("assistant: Done: 6*7 is 42.")
    lines = screen.splitlines()
    started = next(i for i, line in enumerate(lines) if "▸ tutor ← compute 6*7" in line)
    assert lines[started].startswith("  ▸")  # nested under the supervisor
    assert "calculator" in lines[started + 1] and "→ 42" in lines[started + 1]  # the tool call, folded
    assert "✓ tutor" in lines[started + 2] and "6*7 is 42." in lines[started + 2]
    term.prompt(3)

    term.type("/cost")
    screen = term.wait_for("total")
    row = next(line for line in screen.splitlines() if "assistant/tutor" in line)
    assert row.split("│")[2].strip() == "2"  # the tutor's two model calls
    total = next(line for line in screen.splitlines() if "total" in line)
    assert total.split("│")[2].strip() == "5"  # 3 of the supervisor + 2 of the tutor

    term.type("/history")
    screen = term.wait_for("you: compute it")
    assert "you: hello there" in screen and "assistant: Done: 6*7 is 42." in screen.split("/history")[-1]
    assert term.close() == 0
    assert "bye" in term.text()


def test_a_tool_call_that_needs_approval_asks_inline(chat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--persona", "coder", "--root", str(tmp_path))
    term.type("shell please")
    screen = term.wait_for("approve?")
    assert "assistant/coder wants to run shell" in screen and "echo approved-ran" in screen
    term.type("n too risky")
    term.wait_for("was not approved (too risky), so it did not run")
    assert not (tmp_path / "marker.txt").exists()
    term.prompt(2)

    term.type("shell again")
    term.wait_for("approve?", after="you> shell again")
    term.type("/approve")
    term.wait_for("The shell said: exit code 0", after="you> shell again")
    assert (tmp_path / "marker.txt").read_text().strip() == "approved-ran"
    term.prompt(3)
    assert term.close() == 0


def test_ctrl_c_cancels_the_turn_and_the_session_goes_on(chat) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--persona", "tutor")
    term.type("sleep now")
    time.sleep(0.8)
    term.child.sendintr()
    term.wait_for("cancelled")
    term.prompt(2)
    term.type("hello again")
    term.wait_for("watch them arrive.")
    term.prompt(3)
    term.type("/history")
    screen = term.wait_for("you: hello again")
    assert "you: sleep now" in screen.split("/history")[-1]  # the cancelled turn is kept
    assert term.child.isalive()
    assert term.close() == 0


def test_errors_are_one_readable_line_and_the_session_survives(chat) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--persona", "tutor")
    term.type("fail now")
    screen = term.wait_for("test:chat answered 503 Service Unavailable")
    assert any(line.startswith("error: ") and "503" in line for line in screen.splitlines())
    term.prompt(2)
    term.type("/bogus")
    screen = term.wait_for("error: unknown command /bogus; /help lists them")
    term.type("/mode sideways")
    screen = term.wait_for("/mode takes one of route, plan, worklist")
    assert "Traceback" not in screen
    shown = term.text().count("you>")
    term.type("hello")
    term.wait_for("watch them arrive.")
    term.prompt(shown + 1)  # Ctrl-D typed before the prompt is back would reach no reader (seen under load)
    assert term.close() == 0


def test_worklist_mode_shows_a_live_task_table(chat) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--mode", "worklist", "--persona", "researcher,writer")
    term.type("plan a trip")
    screen = term.wait_for(("│ running", "│ pending"))  # the whole table while the researcher works
    table = screen[screen.rindex("tasks"):]
    assert "research Lisbon" in table and "researcher" in table and "pending" in table  # writer waits its turn
    screen = term.wait_for("assistant: Both tasks are done")
    final = screen[screen.rindex("┏"):]
    assert final.count("│ done") == 2 and "running" not in final
    term.prompt(2)
    term.type("/tasks")
    term.wait_for("write the itinerary", after="you> /tasks")
    assert term.close() == 0


def test_plan_mode_shows_the_plan_and_lets_the_person_edit_it(chat) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--mode", "plan", "--persona", "researcher,writer")
    term.type("plan a trip")
    screen = term.wait_for("run this plan?")
    assert "proposed plan" in screen and "research Lisbon" in screen and "write the itinerary" in screen
    term.type("e")
    term.wait_for("Esc then Enter to submit")
    term.wait_for("needs:")
    # the cursor is at the end of the plan's YAML: add a third step (Enter keeps the line's indentation),
    # then submit with Esc, Enter
    term.type("- id: s3\r  task: check the weather\ragent: researcher\rneeds: [s2]", enter=False)
    term.child.send("\x1b\r")
    screen = term.wait_for("s3 researcher done")
    assert "check the weather" in screen
    term.wait_for("assistant: Here is your Lisbon plan")
    term.prompt(2)
    term.type("/plan")
    screen = term.wait_for("check the weather", after="you> /plan")
    plan = screen[screen.rindex("/plan"):]
    assert plan.count("│ done") == 3

    term.type("plan another")
    term.wait_for("run this plan?", after="you> plan another")
    term.type("n not now")
    term.wait_for("stopped: cancelled")
    assert term.close() == 0


def test_slash_commands_complete_with_tab_and_sessions_save_and_load(chat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--persona", "tutor")
    term.type("hello one")
    term.wait_for("watch them arrive.")
    term.prompt(2)
    term.type("/sa", enter=False)
    term.child.send("\t")
    term.wait_for("you> /save")
    term.type(" saved.json")
    term.wait_for("saved to saved.json")
    assert (tmp_path / "saved.json").exists()
    term.type("/reset")
    term.wait_for("a new conversation")
    term.type("/history")
    term.wait_for("no conversation yet")
    term.type("/load saved.json")
    term.wait_for("loaded saved.json: 1 turn(s)")
    term.type("/history")
    screen = term.wait_for("you: hello one", after="you> /history")
    assert "Hello there!" in screen.split("loaded saved.json")[-1]
    term.type("/help")
    term.wait_for("/approve")
    term.type("/quit")
    term.finish()
    assert term.child.exitstatus == 0


def test_in_memory_sessions_ask_for_approval_too(chat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    term: Terminal = chat("--no-durable", "--persona", "coder", "--root", str(tmp_path))
    term.type("shell please")
    term.wait_for("approve?")
    term.type("y")
    term.wait_for("The shell said: exit code 0")
    assert (tmp_path / "marker.txt").read_text().strip() == "approved-ran"
    assert not (tmp_path / ".agentflow" / "agentflow.db").exists()  # nothing was journaled
    term.prompt(2)
    assert term.close() == 0


def test_a_durable_session_survives_a_kill_while_it_waits_and_resumes(tmp_path: Path) -> None:
    first = Terminal(["chat", "--model", CHAT_MODEL, "--persona", "tutor,coder", "--root", str(tmp_path)], tmp_path)
    try:
        first.wait_for("you>")
        session = next(w for w in first.wait_for("session chat-").split() if w.startswith("chat-"))
        first.type("compute it")
        first.wait_for("Done: 6*7 is 42.")
        first.prompt(2)
        first.type("shell please")
        first.wait_for("approve?")
        first.child.kill(9)  # the process dies while the run waits for the person
    finally:
        first.child.close(force=True)
    assert not (tmp_path / "marker.txt").exists()

    second = Terminal(["chat", "--model", CHAT_MODEL, "--resume", session], tmp_path)
    try:
        screen = second.wait_for("approve?")
        assert f"session {session} (durable, 1 turn(s) so far)" in screen
        assert "turn 2 did not finish; resuming it" in screen
        second.type("y")
        second.wait_for("The shell said: exit code 0")
        assert (tmp_path / "marker.txt").read_text().strip() == "approved-ran"
        second.prompt(1)
        second.type("/history")
        screen = second.wait_for("you: shell please", after="you> /history")
        assert "you: compute it" in screen.split("you> /history")[-1]
        assert second.close() == 0
        assert f"agentflow chat --resume {session}" in second.text()
    finally:
        second.child.close(force=True)
