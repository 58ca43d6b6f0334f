"""Bad input everywhere a user types it: each mistake gets agentflow's error, naming the thing and the fix.

One table for the Python API, persona files and workflow files, one for the command line. The REST
API's bad requests have their own table in tests/test_server.py
(`test_each_bad_request_gets_a_named_error_with_the_fix`).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentflow import (
    Agent,
    ConfigError,
    Conversation,
    CycleError,
    GroupChat,
    Limits,
    ModelSettings,
    ScriptedModel,
    Supervisor,
    ToolDefinitionError,
    UserProxy,
    durable,
    persona,
    tool,
)
from agentflow.agent.persona import PersonaError, parse
from agentflow.models import call, get_model
from agentflow.workflow import Workflow, each, step

ROOT = Path(__file__).resolve().parent.parent


def model() -> ScriptedModel:
    return ScriptedModel(["hi"])


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def untyped(x):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201  (the mistake under test)
    return x


class NotASchema:
    pass


@step
def first() -> str:
    return "a"


@step
def second(first: int) -> str:
    return str(first)


@step
def loose(nmae: str) -> str:
    return nmae


class Plan(BaseModel):
    steps: list[str]


@step
def plan() -> Plan:
    return Plan(steps=["a"])


@step
def work(item: str) -> str:
    return item


def cycle() -> None:
    @step
    def a(b: str) -> str:
        return b

    @step
    def b(a: str) -> str:
        return a

    Workflow(a >> b >> a)


def persona_text(*front: str) -> str:
    return "\n".join(["---", "name: poet", "role: a poet", "goal: short verse", *front, "---", "Be brief."])


def missing_key() -> None:
    saved = {k: os.environ.pop(k) for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL") if k in os.environ}
    try:
        get_model("openai:gpt-4o-mini")
    finally:
        os.environ.update(saved)


def two_mistakes_in_a_workflow() -> None:
    @step
    def c(tpoic: str) -> str:
        return tpoic

    Workflow(loose | c, inputs=["name", "topic"])


# (what is wrong, the call that makes the mistake, the error, patterns its message must hold: the thing, the fix)
API: list[tuple[str, Callable[[], Any], type[Exception], tuple[str, ...]]] = [
    # models
    ("model string without provider", lambda: Agent("a", model="gpt-4o"), ConfigError,
     ("'gpt-4o' names no provider", "Fix: write 'openai:gpt-4o'")),
    ("model string with nothing known", lambda: Agent("a", model="large"), ConfigError,
     ("'large' is not a 'provider:model' string", "Fix: write e.g. 'openai:gpt-4o-mini'")),
    ("unknown provider, at Agent()", lambda: Agent("a", model="opnai:gpt-4o"), ConfigError,
     ("unknown model provider 'opnai'", "did you mean 'openai'")),
    ("provider without a model name", lambda: Agent("a", model="anthropic:"), ConfigError,
     ("names no model after 'anthropic:'", "Fix: write e.g. 'anthropic:claude")),
    ("a model that is not a string or Model", lambda: setattr(Agent("a", model=model()), "model", 4), ConfigError,
     ("agent 'a'", "'provider:model' string or a Model, not int")),
    ("missing API key", missing_key, ConfigError, ("no API key for openai:gpt-4o-mini", "Fix: set OPENAI_API_KEY")),
    ("options with a Model object", lambda: get_model(model(), timeout=3), ConfigError,
     ("options can only be given with a model string",)),
    ("temperature out of range", lambda: ModelSettings(temperature=7), ConfigError,
     ("temperature=7.0 \\(must be from 0 to 2\\)", "Fix: give a value in range")),
    ("top_p of zero", lambda: ModelSettings(top_p=0), ConfigError, ("top_p=0.0", "above 0 and at most 1")),
    # agents
    ("agent name with a space", lambda: Agent("my agent", model=model()), ConfigError,
     ("agent name 'my agent' is not allowed", "Fix: e.g. Agent\\('my_agent'")),
    ("agent without a name", lambda: Agent("", model=model()), ConfigError, ("agent name '' is not allowed",)),
    ("max_steps of zero", lambda: Agent("a", model=model(), max_steps=0), ConfigError,
     ("agent 'a': max_steps=0 must be at least 1",)),
    ("negative max_output_retries", lambda: Agent("a", model=model(), max_output_retries=-1), ConfigError,
     ("max_output_retries=-1 must be 0 or more",)),
    ("approve that is not a function", lambda: Agent("a", model=model(), approve="yes"), ConfigError,  # type: ignore[arg-type]
     ("approve='yes' is not a function", "Fix: pass a function")),
    ("output type that cannot be a schema", lambda: Agent("a", model=model(), output=NotASchema), ConfigError,
     ("output=<class .*NotASchema'> cannot be made a JSON schema", "Fix: use a pydantic model")),
    ("ends_with text with a typed output", lambda: Agent("a", model=model(), output=int, ends_with="text"),
     ConfigError, ("ends_with='text' is not possible", "a typed output needs `finish`")),
    ("negative limit", lambda: Limits(max_tokens=-5), ConfigError,
     ("Limits\\(max_tokens=-5\\)", "Fix: give a positive value, or None")),
    ("zero seconds", lambda: Limits(max_seconds=0), ConfigError, ("max_seconds=0.0", "must be above 0")),
    ("a share above 1", lambda: Agent("a", model=model()).as_tool(share=2), ConfigError,
     ("agent 'a' as a tool: share=2", "at most 1")),
    # tools
    ("un-annotated tool parameter", lambda: tool(untyped), ToolDefinitionError,
     ("parameter 'x' has no type hint", "Fix: annotate it")),
    ("a lambda as a tool", lambda: Agent("a", tools=[lambda x: x]), ToolDefinitionError,
     ("tool name '<lambda>' is not allowed", "Fix: pass name= to @tool")),
    ("a tool called finish", lambda: Agent("a", tools=[tool(name="finish")(add.fn)]), ConfigError,
     ("a tool may not be called 'finish'",)),
    ("the same tool twice", lambda: Agent("a", tools=[add, add]), ConfigError,
     ("two tools are called 'add'", "Fix: drop the duplicate")),
    # supervisors and conversations
    ("unknown supervisor mode", lambda: Supervisor([Agent("w", model=model())], mode="auto"), ConfigError,  # type: ignore[arg-type]
     ("mode='auto' is not known", "use 'route', 'plan' or 'worklist'")),
    ("two task agents of one name", lambda: Supervisor([Agent("w", model=model()), Agent("w", model=model())]),
     ConfigError, ("two agents share a name",)),
    ("a proxy without a goal", lambda: UserProxy("  "), ConfigError, ("UserProxy needs a goal",)),
    ("proxy and assistant of one name",
     lambda: Conversation(Agent("x", model=model()), UserProxy("g", name="x", model=model())), ConfigError,
     ("both called 'x'", "give one another name")),
    ("max_turns of zero", lambda: Conversation(Agent("x", model=model()), UserProxy("g", model=model()), max_turns=0),
     ConfigError, ("max_turns and max_stale must be at least 1",)),
    ("a group of one", lambda: GroupChat([Agent("x", model=model())]), ConfigError,
     ("needs at least two members",)),
    ("an unknown speaker rule", lambda: GroupChat([Agent("x", model=model()), Agent("y", model=model())],
                                                  manager="rr"), ConfigError,  # type: ignore[arg-type]
     ("manager='rr' is not known", "use 'llm', 'round_robin', 'random'")),
    ("a finisher who is not a member", lambda: GroupChat([Agent("x", model=model()), Agent("y", model=model())],
                                                         finishers=["z"]), ConfigError,
     ("finishers must name members \\(x, y\\)",)),
    # workflows
    ("a cycle", cycle, CycleError, ("a -> b -> a", "Fix: remove one of these dependencies")),
    ("a task that runs at the same time as its input", lambda: Workflow(first | second), ConfigError,
     ("'first' runs at the same time", "Fix: order them with first >> second")),
    ("types that cannot match", lambda: Workflow(first >> second), ConfigError,
     ("parameter 'first' expects int, but 'first' produces str",)),
    ("an input that is not declared", lambda: Workflow(loose, inputs=["name"]), ConfigError,
     ("task 'loose' needs 'nmae'", "Fix: rename the parameter")),
    ("an unbound input at run time", lambda: Workflow(loose).run_sync(), ConfigError,
     ("needs the input 'nmae'", "Fix: pass nmae=")),
    ("a misspelt input at run time", lambda: Workflow(loose).run_sync(nmae="x", nam="y"), ConfigError,
     ("has no input 'nam'",)),
    ("each over a model, not its list", lambda: Workflow(plan >> each(work, over="plan")), ConfigError,
     ("not a list", "Fix: name the list field, e.g. over='plan.steps'")),
    ("several mistakes in one workflow", two_mistakes_in_a_workflow, ConfigError,
     ("2 mistakes:", "'loose' needs 'nmae'", "'c' needs 'tpoic'")),
    # personas
    ("a misspelt persona field", lambda: parse(persona_text("tols: [calculator]")), PersonaError,
     (":5: tols: unknown field \\(did you mean 'tools'\\?\\)",)),
    ("bad YAML", lambda: parse(persona_text("tools: [calculator")), PersonaError, ("YAML error",)),
    ("no front matter", lambda: parse("Be brief."), PersonaError, ("starts with a '---' line",)),
    ("an unknown tool", lambda: parse(persona_text("tools: [calculater]")), PersonaError,
     ("unknown tool 'calculater' \\(did you mean 'calculator'\\?\\)",)),
    ("a persona's bad model", lambda: parse(persona_text("model: opnai:x")), PersonaError,
     (":5: model: unknown model provider 'opnai'",)),
    ("a persona's negative max_steps", lambda: parse(persona_text("max_steps: -1")), PersonaError,
     ("max_steps: must be at least 1",)),
    ("an unknown output type", lambda: parse(persona_text("output: {a: {type: strng}}")), PersonaError,
     ("output.a: unknown type 'strng'", "use str, int")),
    ("an unknown persona", lambda: persona.get("tutr"), ConfigError,
     ("no persona 'tutr' \\(did you mean 'tutor'\\?\\)",)),
    # durable runs
    ("a durable target not registered", lambda: durable.registry.get("counter"), ConfigError,
     ("no target is registered as 'counter'", "Fix: durable.register")),
    ("a durable target of the wrong kind", lambda: durable.register(add), ConfigError,  # type: ignore[arg-type]
     ("cannot run .* durably", "register an Agent, a Supervisor or a Workflow")),
    ("a database URL of another kind", lambda: durable.connect("mysql://localhost/runs"), ConfigError,
     ("need a sqlite:///path or postgresql://... URL",)),
    ("runs in a database that does not exist", lambda: durable.connect("sqlite:////nowhere/runs.db"), ConfigError,
     ("there are no runs at sqlite:////nowhere/runs.db", "Fix: pass the database")),
]


@pytest.mark.parametrize(("mistake", "make", "error", "says"), API, ids=[row[0] for row in API])
def test_each_mistake_gets_a_named_error_with_the_fix(mistake: str, make: Callable[[], Any], error: type[Exception],
                                                      says: tuple[str, ...]) -> None:
    with pytest.raises(error) as caught:
        make()
    message = str(caught.value)
    for pattern in says:
        assert re.search(pattern, message), f"{mistake}: {pattern!r} not in {message!r}"


def test_the_tables_hold_at_least_40_mistakes() -> None:
    assert len(API) + len(CLI) >= 40


def test_a_tool_returning_what_no_model_can_read_is_named_and_the_run_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def opaque() -> NotASchema:
        """Return something opaque."""
        return NotASchema()

    agent = Agent("a", tools=[opaque], model=ScriptedModel([call("opaque"), call("finish", answer="done")]))
    with caplog.at_level(logging.WARNING, logger="agentflow.tools"):
        result = agent.run_sync("go")
    assert result.output == "done"  # nothing lost: the run goes on, and the model hears why
    observed = result.steps[1]
    assert observed.error == "unshowable"  # type: ignore[union-attr]
    assert "opaque ran, but its result cannot be shown" in observed.observation  # type: ignore[union-attr]
    assert "a value of type NotASchema cannot be shown" in caplog.text and "Fix: return a str, dict" in caplog.text


def test_an_unknown_provider_is_caught_where_the_agent_is_defined_not_at_its_first_call() -> None:
    agent = Agent("a", model="openai:gpt-4o-mini")  # a good string: no key is needed until the first call
    assert agent.name == "a"
    with pytest.raises(ConfigError):
        Agent("b", model="openia:gpt-4o-mini")


# -- the command line ---------------------------------------------------------------------------

CLI: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("unknown provider", ("run", "hi", "--model", "nope:x"), ("unknown model provider 'nope'",)),
    ("a wrong model and a wrong persona at once", ("run", "hi", "--model", "gpt-4o", "-p", "tutr"),
     ("2 mistakes:", "Fix: write 'openai:gpt-4o'", "no persona 'tutr' \\(did you mean 'tutor'\\?\\)")),
    ("chat with a misspelt provider", ("chat", "--model", "opnai:x"), ("did you mean 'openai'",)),
    ("no API key", ("run", "hi", "-p", "tutor", "--model", "openai:gpt-4o-mini"),
     ("no API key for openai:gpt-4o-mini", "Fix: set OPENAI_API_KEY")),
    ("runs in a database that is not there", ("runs", "list", "--db", "sqlite:////nowhere/x.db"),
     ("there are no runs at", "Fix: pass the database")),
    ("serve a name the file does not define", ("serve", "tests/server_app.py:cal"),
     ("defines no 'cal' \\(did you mean 'calc'\\?\\)", "Servable there: .*calc")),
    ("serve a file that is not there", ("serve", "nofile.py"), ("no file nofile.py",)),
    ("pull a model not in the catalog", ("models", "pull", "qwen9"), ("no local model called 'qwen9'", "Known: ")),
]


@pytest.mark.parametrize(("mistake", "argv", "says"), CLI, ids=[row[0] for row in CLI])
def test_each_command_line_mistake_exits_2_naming_the_thing_and_the_fix(mistake: str, argv: tuple[str, ...],
                                                                        says: tuple[str, ...]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTFLOW_MODEL")}
    done = subprocess.run([sys.executable, "-m", "agentflow.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, (mistake, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for pattern in says:
        assert re.search(pattern, done.stderr), f"{mistake}: {pattern!r} not in {done.stderr!r}"
