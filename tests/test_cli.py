"""The `agentflow` command, run as a subprocess: help, personas, tools, `run` of a task or a workflow
file, and its exit codes (0 done, 1 failed or stopped short, 2 bad usage).

Each command takes most of a second to start (imports), so every command of this file is listed
in COMMANDS and they all run at once, in one workspace, when the first test asks; each test then
checks the results it names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from agentflow.tools import known

import agentflow

CHAT_MODEL = str(Path(__file__).parent / "chat_model.py")
SHIPPED = ["analyst", "coder", "editor", "planner", "researcher", "tutor", "writer"]
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AGENTFLOW_MODEL",
         "AGENTFLOW_PERSONAS", "AGENTFLOW_DB", "AGENTFLOW_MODELS", "AGENTFLOW_LOCAL_URL", "AGENTFLOW_LLAMA_SERVER",
         "XDG_CACHE_HOME")
DONE = "Done: 6*7 is 42.\n"  # what tests/chat_model.py answers to a task starting "compute"

# -- the workspace ----------------------------------------------------------------------------------

FILES = {
    "mine/poet.md": """
        ---
        name: poet
        role: a poet
        goal: write short verse
        tools: [calculator]
        ---
        Rhyme when you can.
    """,
    "bad/poet.md": """
        ---
        name: poet
        role: a poet
        goal: write short verse
        tools: [calculator, laser]
        ---
    """,
    "flow.py": """
        from agentflow.workflow import Workflow, step


        @step
        def greet(name: str) -> str:
            return f"hello {name}"


        @step
        def count(greet: str, times: int) -> dict:
            return {"text": greet, "times": times}


        flow = Workflow(greet >> count, name="flow")
    """,
    "rhymes.py": """
        from agentflow import FunctionModel
        from agentflow.workflow import Workflow, step, task


        @task("Name a colour that rhymes with {word}; answer with the colour only")
        async def colour(word: str) -> str: ...


        @step
        def sentence(colour: str) -> str:
            return f"The sky is {colour}."


        rhymes = Workflow(colour >> sentence, name="rhymes", model=FunctionModel(lambda info: "red"))
    """,
    "flows.py": """
        from agentflow.workflow import Workflow, step


        @step
        def greet(name: str) -> str:
            return f"hello {name}"


        @step
        def shout(greet: str, times: int = 1) -> str:
            return greet.upper() + "!" * times


        @step
        def boom(name: str) -> str:
            raise ValueError(f"kaboom for {name}")


        greeting = Workflow(greet >> shout, name="greeting")
        broken = Workflow(boom, name="broken")
    """,
    "helper.py": """
        from agentflow import Agent, FunctionModel

        helper = Agent("helper", "You help.", model=FunctionModel(lambda info: f"echo: {info.last.content}"),
                       ends_with="text")
    """,
    "factory.py": """
        from agentflow import ScriptedModel


        def make():
            return ScriptedModel(["Hi from a factory."])
    """,
    "stuck.py": """
        from agentflow import FunctionModel
        from agentflow.models.scripted import call


        def reply(info):
            if (info.messages[0].content or "").startswith("You are tutor"):
                return "not sure"
            return call("tutor", task=f"try again ({len(info.messages)})")  # the supervisor never answers


        model = FunctionModel(reply, name="stuck")
    """,
    "talk.py": """
        import re

        from agentflow import FunctionModel
        from agentflow.models.scripted import call


        def reply(info):
            system, last = info.messages[0].content or "", info.last.content or ""
            said = sum(1 for m in info.messages if m.role == "assistant")
            if system.startswith("You stand in"):  # the UserProxy: the goal's last word is the file to make
                word = re.search(r"(\\w+)\\n\\nThe assistant", system)[1]
                if said == 0:
                    return f"Please compute 6*7, and run: echo ran > {word}.txt"
                last = last.split("\\n\\n(The goal:")[0]  # the reply it read, without the reminder of its goal
                return call("finish", summary=f"the tutor said {last!r}", goal_met="42" in last, result=last)
            if system.startswith("You manage"):  # a group chat's manager: tutor first, then writer
                return call("finish", speaker="tutor" if "was user" in last else "writer")
            if system.startswith("You are tutor"):
                return call("calculator", expression="6*7") if info.last.role == "user" else f"It is {last}."
            if system.startswith("You are writer"):  # in a group it ends the chat, even when it may not
                if "group conversation" not in system:
                    return "I only write words."
                return call("finish", summary="the tutor computed it", goal_met=True, result="6*7 = 42")
            if system.startswith("You are coder"):
                if info.last.role == "user" and (asked := re.search(r"run: (.*)", last)):
                    return call("shell", command=asked[1])
                return f"The shell said: {last}"
            return "?"


        model = FunctionModel(reply)
    """,
}

TASK = ("run", "compute it", "--model", CHAT_MODEL, "-p", "tutor")
TALK = ("converse", "--model", "talk.py")
COMMANDS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    # help
    "help": (("--help",), {}),
    "help-chat": (("chat", "--help"), {}),
    "help-run": (("run", "--help"), {}),
    "help-personas": (("personas", "--help"), {}),
    "help-personas-show": (("personas", "show", "--help"), {}),
    "help-tools": (("tools", "--help"), {}),
    "help-runs": (("runs", "--help"), {}),
    "version": (("--version",), {}),
    "no-command": ((), {}),
    # personas and tools
    "personas": (("personas", "list"), {}),
    "personas-json": (("personas", "list", "--json"), {}),
    "show-coder": (("personas", "show", "coder"), {}),
    "show-editor-json": (("personas", "show", "editor", "--json"), {}),
    "show-nope": (("personas", "show", "nope"), {}),
    "user-show": (("personas", "--personas", "mine", "show", "poet"), {}),
    "user-list": (("personas", "--personas", "mine", "list"), {}),
    "user-env": (("personas", "list"), {"AGENTFLOW_PERSONAS": "{ws}/mine"}),
    "user-after-action": (("personas", "list", "--personas", "mine"), {}),
    "bad-persona": (("personas", "--personas", "bad", "list"), {}),
    "missing-dir": (("personas", "--personas", "nowhere", "list"), {}),
    "tools": (("tools",), {}),
    "tools-json": (("tools", "--json"), {}),
    # run a task
    "task": (TASK, {}),
    "task-json": ((*TASK[:-1], "tutor,coder", "--json"), {}),
    "task-quiet": ((*TASK, "--quiet"), {}),
    "task-env-model": (("run", "compute it", "-p", "tutor", "-q"), {"AGENTFLOW_MODEL": CHAT_MODEL}),
    "task-factory": (("run", "hello", "--model", "factory.py:make", "-p", "tutor", "-q"), {}),
    "task-fail": (("run", "fail now", "--model", CHAT_MODEL, "-p", "tutor", "-q"), {}),
    "stuck": (("run", "compute it", "--model", "stuck.py", "-p", "tutor", "-q"), {}),
    "stuck-json": (("run", "compute it", "--model", "stuck.py", "-p", "tutor", "-q", "--json"), {}),
    "no-model-file": (("run", "compute it", "--model", "nonexistent.py"), {}),
    "no-model": (("run", "compute it"), {}),
    "unknown-persona": (("run", "compute it", "--model", CHAT_MODEL, "-p", "nope"), {}),
    "two-mistakes": (("run", "compute it", "--model", "opnai:gpt-4o-mini", "-p", "writr,nope"), {}),
    # run a file
    "flow-json": (("run", "flow.py", "--input", "name=Ann", "-i", "times=2", "--json", "-q"), {}),
    "rhymes": (("run", "rhymes.py", "-i", "word=bed"), {}),
    "greeting": (("run", "flows.py:greeting", "-i", "name=Ann", "-i", "times=2", "-q"), {}),
    "two-flows": (("run", "flows.py", "-i", "name=Ann"), {}),
    "broken": (("run", "flows.py:broken", "-i", "name=Ann", "-q"), {}),
    "broken-json": (("run", "flows.py:broken", "-i", "name=Ann", "-q", "--json"), {}),
    "missing-file": (("run", "missing.py", "-q"), {}),
    "task-to-flow": (("run", "flows.py:greeting", "a task", "-q"), {}),
    "bad-input": (("run", "flows.py:greeting", "-i", "Ann", "-q"), {}),
    "not-runnable": (("run", "flows.py:greet", "a task", "-q"), {}),
    "agent": (("run", "helper.py", "say hi", "--json"), {}),
    "agent-no-task": (("run", "helper.py", "-q"), {}),
    # converse
    "help-converse": (("converse", "--help"), {}),
    "pair": ((*TALK, "--assistant", "tutor", "--goal", "learn 6*7 in pairfile"), {}),
    "pair-json": ((*TALK, "--assistant", "tutor", "--proxy-goal", "learn 6*7 in jsonfile", "--json", "-q"), {}),
    "pair-unmet": ((*TALK, "--assistant", "writer", "--goal", "learn 6*7 in unmetfile", "-q"), {}),
    "pair-refused": ((*TALK, "--assistant", "coder", "--goal", "make the file refused", "-q"), {}),
    "pair-yes": ((*TALK, "--assistant", "coder", "--goal", "make the file approved", "--yes", "-q"), {}),
    "group": ((*TALK, "--group", "tutor,writer", "--goal", "compute 6*7", "--manager", "round_robin"), {}),
    "group-llm": ((*TALK, "--group", "tutor", "--group", "writer", "--goal", "compute 6*7", "--json", "-q"), {}),
    "group-finisher": ((*TALK, "--group", "tutor,writer", "--goal", "x", "--finisher", "tutor",
                        "--manager", "round_robin", "--max-turns", "3"), {}),
    "converse-no-persona": ((*TALK, "--assistant", "nope", "--goal", "x"), {}),
    "converse-no-goal": ((*TALK, "--assistant", "tutor"), {}),
    "converse-both": ((*TALK, "--assistant", "tutor", "--group", "writer", "--goal", "x"), {}),
    "group-opening": ((*TALK, "--group", "tutor,writer", "--goal", "x", "--opening", "hi"), {}),
    "pair-manager": ((*TALK, "--assistant", "tutor", "--goal", "x", "--manager", "random"), {}),
}


def agentflow_cmd(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`agentflow ARGS` in `cwd` (also its HOME), with no provider configured unless `env` sets one."""
    full = {k: v for k, v in os.environ.items() if k not in UNSET}
    full.update(HOME=str(cwd), CHAT_MODEL_WORD_PAUSE="0", COLUMNS="200", NO_COLOR="1", **env)
    return subprocess.run([sys.executable, "-m", "agentflow.cli", *args], cwd=cwd, env=full, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


class Ran:
    """The commands' results by name, each waited for when first asked."""

    def __init__(self, futures: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
        self.futures = futures

    def __getitem__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ran(ws: Path) -> Iterator[Ran]:
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 2) as pool:
        yield Ran({name: pool.submit(agentflow_cmd, ws, *args, **{k: v.format(ws=ws) for k, v in env.items()})
                   for name, (args, env) in COMMANDS.items()})


def lines_of(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line.strip()]


# -- help and version -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "words"), [
    ("help", ["chat", "run", "personas", "tools", "runs", "--version"]),
    ("help-chat", ["--persona", "--personas", "--mode", "--model", "--root", "--allow-host", "--timeout"]),
    ("help-run", ["target", "FILE.py[:NAME]", "--input", "--json", "--quiet", "--persona", "--model", "--mode"]),
    ("help-personas", ["list", "show", "--personas"]),
    ("help-personas-show", ["name", "--json"]),
    ("help-tools", ["--json"]),
    ("help-runs", ["list", "show", "approve", "answer", "resume", "cancel", "--db"]),
])
def test_help_exits_0_and_names_the_commands_and_options(ran: Ran, name: str, words: list[str]) -> None:
    done = ran[name]
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: agentflow")
    for word in words:
        assert word in done.stdout


def test_version_and_no_command(ran: Ran) -> None:
    done = ran["version"]
    assert done.returncode == 0 and done.stdout.strip() == f"agentflow {agentflow.__version__}"
    done = ran["no-command"]
    assert done.returncode == 2 and "COMMAND" in done.stderr


# -- personas and tools -----------------------------------------------------------------------------

def test_personas_list_shows_the_shipped_seven(ran: Ran) -> None:
    done = ran["personas"]
    assert done.returncode == 0, done.stderr
    assert lines_of(done.stdout) == SHIPPED
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "a pragmatic Python programmer" in rows["coder"] and rows["coder"].endswith("[files, python, shell]")
    assert rows["editor"].endswith("[no tools]")

    done = ran["personas-json"]
    assert done.returncode == 0
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    assert list(listed) == SHIPPED
    assert listed["tutor"]["tools"] == ["calculator"] and listed["tutor"]["role"] == "a patient math tutor"
    assert set(listed["editor"]["output"]) == {"verdict", "score", "issues"}


def test_personas_show_gives_the_fields_and_tools(ran: Ran) -> None:
    done = ran["show-coder"]
    assert done.returncode == 0, done.stderr
    for line in ("name       coder", "role       a pragmatic Python programmer", "tools      files, python, shell",
                 "model      (the default)", "- Read the code that exists before you change it."):
        assert line in done.stdout.splitlines()

    shown = json.loads(ran["show-editor-json"].stdout)
    assert shown["name"] == "editor" and shown["tools"] == []
    assert shown["output"]["score"]["type"] == "int" and "Accept only" in shown["instructions"]


def test_personas_show_an_unknown_name_exits_2_listing_the_known(ran: Ran) -> None:
    done = ran["show-nope"]
    assert done.returncode == 2 and done.stdout == ""
    assert f"agentflow: there is no persona 'nope'; known: {', '.join(SHIPPED)}" in done.stderr
    assert "Traceback" not in done.stderr


def test_personas_from_a_user_directory(ran: Ran) -> None:
    done = ran["user-show"]
    assert done.returncode == 0, done.stderr
    assert "name       poet" in done.stdout and "tools      calculator" in done.stdout
    assert f"file       {Path('mine') / 'poet.md'}" in done.stdout and "Rhyme when you can." in done.stdout
    assert lines_of(ran["user-list"].stdout) == [*SHIPPED, "poet"]
    assert lines_of(ran["user-env"].stdout) == [*SHIPPED, "poet"]  # $AGENTFLOW_PERSONAS


def test_the_personas_dir_option_may_follow_the_action(ran: Ran) -> None:
    done = ran["user-after-action"]
    assert done.returncode == 0 and "poet" in lines_of(done.stdout)


def test_a_bad_persona_file_exits_2_naming_file_line_and_field(ran: Ran) -> None:
    bad = Path("bad") / "poet.md"
    done = ran["bad-persona"]
    assert done.returncode == 2 and done.stdout == ""
    assert f"agentflow: {bad}:5: tools: unknown tool 'laser'; known: calculator" in done.stderr
    assert "Traceback" not in done.stderr
    done = ran["missing-dir"]
    assert done.returncode == 2 and "persona directory nowhere does not exist" in done.stderr


def test_tools_lists_the_ready_made_tools(ran: Ran) -> None:
    done = ran["tools"]
    assert done.returncode == 0, done.stderr
    assert lines_of(done.stdout) == list(known())
    assert any(line.startswith("shell") and "approval" in line for line in done.stdout.splitlines())
    done = ran["tools-json"]
    assert done.returncode == 0 and json.loads(done.stdout) == known()


# -- run a task -------------------------------------------------------------------------------------

def test_run_a_task_prints_the_answer_and_shows_progress(ran: Ran) -> None:
    done = ran["task"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == DONE
    assert "tutor ← compute 6*7" in done.stderr  # the delegation ...
    assert 'calculator({"expression": "6*7"}) → 42' in done.stderr  # ... and the tutor's tool call


def test_run_a_task_as_json(ran: Ran) -> None:
    done = ran["task-json"]
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["output"] == DONE.strip() and data["stop_reason"] == "finish" and data["detail"] == ""
    assert data["usage"]["requests"] == 4 and data["usage"]["input_tokens"] > 0  # supervisor 2, tutor 2


def test_run_quiet_shows_no_progress(ran: Ran) -> None:
    done = ran["task-quiet"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == DONE and done.stderr == ""


def test_the_model_may_come_from_the_environment_or_a_factory(ran: Ran) -> None:
    done = ran["task-env-model"]  # AGENTFLOW_MODEL=chat_model.py
    assert done.returncode == 0 and done.stdout == DONE
    done = ran["task-factory"]  # factory.py:make, a function that returns the model
    assert done.returncode == 0 and done.stdout == "Hi from a factory.\n"


def test_a_run_that_stops_short_exits_1(ran: Ran) -> None:
    done = ran["stuck-json"]
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert data["output"] is None and data["stop_reason"] == "max_steps"
    assert data["detail"] == "agent 'assistant' reached max_steps=30"
    done = ran["stuck"]
    assert done.returncode == 1
    assert "agentflow: the run stopped: max_steps: agent 'assistant' reached max_steps=30" in done.stderr


def test_a_run_that_stops_short_prints_no_answer(ran: Ran) -> None:
    assert ran["stuck"].stdout == ""


def test_a_failing_model_exits_1(ran: Ran) -> None:
    done = ran["task-fail"]
    assert done.returncode == 1 and done.stdout == ""
    assert "503 Service Unavailable" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_model_file_exits_2(ran: Ran) -> None:
    done = ran["no-model-file"]
    assert done.returncode == 2 and done.stdout == ""
    assert "agentflow: there is no file nonexistent.py" in done.stderr and "Traceback" not in done.stderr


def test_no_model_configured_exits_2_and_says_how_to_fix(ran: Ran) -> None:
    done = ran["no-model"]
    assert done.returncode == 2 and done.stdout == ""
    assert "agentflow: no model was named and none is available. Fix one of:" in done.stderr
    for fix in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "pip install 'agentflow[local]' && agentflow models pull "
                "qwen2.5-coder-1.5b", "AGENTFLOW_MODEL"):
        assert fix in done.stderr


def test_an_unknown_persona_exits_2_listing_the_known(ran: Ran) -> None:
    done = ran["unknown-persona"]
    assert done.returncode == 2 and done.stdout == ""
    assert f"agentflow: there is no persona 'nope'; known: {', '.join(SHIPPED)}" in done.stderr


def test_a_command_line_with_two_mistakes_names_both_at_once(ran: Ran) -> None:
    done = ran["two-mistakes"]
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "agentflow: 2 mistakes:",
        "- unknown model provider 'opnai' (did you mean 'openai'?) in 'opnai:gpt-4o-mini'. Known providers: "
        "openai, anthropic, local",
        f"- there is no persona 'writr', 'nope' (did you mean 'writer'?); known: {', '.join(SHIPPED)}",
    ]


# -- run a workflow or agent file -------------------------------------------------------------------

def test_run_a_workflow_file_prints_its_output(ran: Ran) -> None:
    done = ran["rhymes"]  # a prompt task (its FunctionModel in the file), then a Python step
    assert done.returncode == 0, done.stderr
    assert done.stdout == "The sky is red.\n"


def test_run_a_workflow_file_as_json(ran: Ran) -> None:
    done = ran["flow-json"]
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["output"] == {"text": "hello Ann", "times": 2} and data["error"] is None  # times=2 read as JSON
    assert data["outputs"] == {"greet": "hello Ann", "count": {"text": "hello Ann", "times": 2}}
    assert data["usage"]["requests"] == 0


def test_run_a_workflow_shows_its_tasks(ran: Ran) -> None:
    assert "colour" in ran["rhymes"].stderr


def test_run_a_named_workflow_of_a_file(ran: Ran) -> None:
    done = ran["greeting"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == "HELLO ANN!!\n"


def test_a_file_with_two_workflows_and_no_name_exits_2_naming_them(ran: Ran) -> None:
    done = ran["two-flows"]
    assert done.returncode == 2 and done.stdout == ""
    assert "flows.py must hold exactly one workflow, agent or supervisor (found: greeting, broken); name one " \
           "with flows.py:NAME" in done.stderr


def test_a_workflow_task_that_raises_exits_1(ran: Ran) -> None:
    done = ran["broken"]
    assert done.returncode == 1 and done.stdout == ""
    assert "workflow 'broken': task 'boom' failed: ValueError: kaboom for Ann" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failed_workflow_with_json_prints_its_error(ran: Ran) -> None:
    done = ran["broken-json"]
    assert done.returncode == 1 and "kaboom" in json.loads(done.stdout)["error"]


@pytest.mark.parametrize(("name", "words"), [
    ("missing-file", "agentflow: there is no file missing.py"),
    ("task-to-flow", "flows.py:greeting is a workflow: give its inputs with --input NAME=VALUE"),
    ("bad-input", "--input 'Ann' must be NAME=VALUE"),
    ("agent-no-task", "helper.py holds an agent or supervisor: give it a task after the file"),
])
def test_file_usage_errors_exit_2(ran: Ran, name: str, words: str) -> None:
    done = ran[name]
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


def test_naming_an_object_that_cannot_run_exits_2(ran: Ran) -> None:
    done = ran["not-runnable"]
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_run_an_agent_file_with_a_task(ran: Ran) -> None:
    done = ran["agent"]
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["output"] == "echo: say hi" and data["stop_reason"] == "finish"


# -- converse ---------------------------------------------------------------------------------------

def test_converse_help(ran: Ran) -> None:
    done = ran["help-converse"]
    assert done.returncode == 0, done.stderr
    for word in ("--assistant", "--group", "--goal", "--opening", "--manager", "--finisher", "--max-turns",
                 "--yes", "--json", "--model", "--root"):
        assert word in done.stdout
    assert "converse" in ran["help"].stdout


def test_converse_a_pair_shows_the_conversation_and_prints_the_result(ran: Ran) -> None:
    done = ran["pair"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == "It is 42.\n"
    err = done.stderr
    order = [err.index(s) for s in ("user_proxy: Please compute 6*7", 'calculator({"expression": "6*7"}) → 42',
                                    "tutor: It is 42.", "✓ user_proxy called finish", "ended: finish")]
    assert order == sorted(order)
    assert "who" in err and "tokens" in err and "ended: finish by user_proxy (goal met)" in err  # the summary


def test_converse_as_json(ran: Ran) -> None:
    done = ran["pair-json"]
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["goal_met"] is True and data["stop_reason"] == "finish" and data["concluded_by"] == "user_proxy"
    assert data["output"] == "It is 42."
    assert [(t["speaker"], t["final"]) for t in data["transcript"]] == \
        [("user_proxy", False), ("tutor", False), ("user_proxy", True)]
    assert data["transcript"][1]["tool_calls"] == 1
    assert set(data["per_agent"]) == {"user_proxy", "tutor"} and data["usage"]["requests"] == 4


def test_converse_exits_1_when_the_goal_is_not_met(ran: Ran) -> None:
    done = ran["pair-unmet"]  # the writer persona never computes: the proxy's verdict is "not met"
    assert done.returncode == 1
    assert "goal NOT met" in done.stderr


def test_converse_approvals_are_refused_without_a_terminal_and_given_by_yes(ran: Ran, ws: Path) -> None:
    refused = ran["pair-refused"]
    assert "was not approved" in refused.stdout  # the coder reported the refusal; the proxy's result quotes it
    assert not (ws / "refused.txt").exists()
    approved = ran["pair-yes"]
    assert (ws / "approved.txt").read_text().strip() == "ran"
    assert "exit code 0" in approved.stdout


def test_converse_a_group_chat(ran: Ran) -> None:
    done = ran["group"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == "6*7 = 42\n"
    err = done.stderr
    assert err.index("user: compute 6*7") < err.index("tutor: It is 42.") < err.index("✓ writer called finish")
    data = json.loads(ran["group-llm"].stdout)  # the LLM manager picks tutor, then writer
    assert data["goal_met"] is True and [t["speaker"] for t in data["transcript"]] == ["user", "tutor", "writer"]
    assert "manager" in data["per_agent"]


def test_converse_finishers_limit_who_may_end_a_group_chat(ran: Ran) -> None:
    done = ran["group-finisher"]  # the writer may not finish: each `finish` is refused until its turn runs out
    assert done.returncode == 1
    assert "You may not end this conversation" in done.stderr  # the refusal, as the writer's tool line shows it
    assert "note: turn 2: writer's turn ended early: agent 'writer' reached max_steps" in done.stderr
    assert "ended: max_turns" in done.stderr


@pytest.mark.parametrize(("name", "message"), [
    ("converse-no-persona", "there is no persona 'nope'"),
    ("converse-no-goal", "the following arguments are required: --goal"),
    ("converse-both", "not allowed with argument"),
    ("group-opening", "--opening is the UserProxy's first message"),
    ("pair-manager", "--finisher and --manager are for --group"),
])
def test_converse_bad_usage_exits_2(ran: Ran, name: str, message: str) -> None:
    done = ran[name]
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_every_chat_command_has_its_handler() -> None:
    from agentflow.cli.chat import COMMANDS, Chat

    missing = [c for c in COMMANDS if c != "/quit" and not callable(getattr(Chat, f"_cmd_{c[1:]}", None))]
    assert missing == []
