"""MCP both ways, against real MCP servers made with the `mcp` SDK (tests/mcp_servers/calc.py) over
stdio, streamable HTTP and SSE: their tools in agents, and agentflow targets served as MCP tools."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentflow import Agent, ConfigError, FunctionModel, RunResult, ScriptedModel, ToolCall, ToolStep, durable
from agentflow.agent.persona import PersonaError, parse
from agentflow.core.errors import ToolDefinitionError
from agentflow.mcp import MCPTool, ServerSpec, close_all, connection_to, mcp_tools
from agentflow.models.scripted import RequestInfo
from tests import programs

ROOT = Path(__file__).resolve().parent.parent
CALC = f"stdio:{sys.executable} -m tests.mcp_servers.calc"


@pytest.fixture(autouse=True, scope="module")
def _closed() -> Iterator[None]:
    os.chdir(ROOT)  # the servers are started as `python -m tests...`
    yield
    close_all()


def calc(**kwargs: Any) -> dict[str, Any]:
    return {t.name: t for t in mcp_tools(CALC, exclude=["loose"], **kwargs)}


def use(name: str, ident: str = "c1", **arguments: Any) -> ToolCall:
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


def calls_then_finish(*calls: ToolCall) -> FunctionModel:
    """Makes `calls` one by one, then finishes with the last observation."""

    def reply(info: RequestInfo) -> Any:
        n = sum(m.role == "assistant" for m in info.messages)
        if n < len(calls):
            return calls[n]
        return use("finish", "f", answer=info.messages[-1].content or "")

    return FunctionModel(reply)


def calls(result: RunResult[Any]) -> list[ToolStep]:
    return [s for s in result.steps if isinstance(s, ToolStep)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(how: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.mcp_servers.calc", how, str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    programs.started.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the {how} MCP server did not listen on {port}")


# -- tools as the model sees them -----------------------------------------------------------------

def test_a_servers_tools_become_tools_with_strict_schemas() -> None:
    tools = calc()
    assert sorted(tools) == ["add", "counter", "crash", "fail", "picture", "pid", "shout", "slow", "stats"]
    assert all(isinstance(t, MCPTool) for t in tools.values())
    assert tools["add"].spec.description == "Add two integers."
    assert tools["add"].spec.parameters == {
        "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"], "additionalProperties": False}
    # an optional argument is required and nullable, as in `@tool` schemas
    shout = tools["shout"].spec.parameters
    assert shout["required"] == ["text", "times"] and shout["properties"]["times"]["anyOf"][1] == {"type": "null"}
    assert "default" not in json.dumps(shout)


def test_include_exclude_and_approval_pick_the_tools() -> None:
    picked = mcp_tools(CALC, include=["s*"], exclude=["slow"], requires_approval=["shout"], prefix="calc_")
    assert [t.name for t in picked] == ["calc_shout", "calc_stats"]
    assert [t.requires_approval for t in picked] == [True, False]
    assert all(t.requires_approval for t in mcp_tools(CALC, include=["add", "pid"], requires_approval=True))


def test_mistakes_in_the_filters_are_named_all_at_once() -> None:
    with pytest.raises(ToolDefinitionError) as info:
        mcp_tools(CALC, include=["ad"], exclude=["sloww"], requires_approval=["shoutt"])
    message = str(info.value)
    assert message.startswith("3 mistakes:")
    assert "'ad' matches no tool" in message and "(did you mean 'add'?)" in message
    assert "'sloww' matches no tool" in message and "(did you mean 'slow'?)" in message
    assert "requires_approval names 'shoutt'" in message and "(did you mean 'shout'?)" in message


def test_a_schema_strict_mode_cannot_state_is_refused_by_name_unless_strict_is_off() -> None:
    with pytest.raises(ToolDefinitionError, match=r"MCP tool 'loose' has a schema strict mode cannot state "
                                                  r"\(data: a free-form object.*exclude=\['loose'\].*strict=False"):
        mcp_tools(CALC)
    (loose,) = mcp_tools(CALC, include=["loose"], strict=False)
    assert loose.spec.parameters["properties"]["data"].get("additionalProperties", True) is not False
    assert asyncio.run(loose.call({"data": {"b": 1, "a": 2}})) == "['a', 'b']"


@pytest.mark.parametrize("spec, fix", [
    ("python -m server", "stdio:COMMAND ARGS"),
    ("stdio:", "names no command"),
    ("sse:ftp://x", r"is not an http\(s\) URL"),
])
def test_a_server_string_that_is_not_one_says_how_to_write_it(spec: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        ServerSpec.parse(spec)


def test_a_server_that_does_not_start_is_a_config_error_with_its_last_words(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    script.write_text("import sys\nprint('no database configured', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(ConfigError, match=r"could not connect to the MCP server .*dies.py.*no database configured"):
        mcp_tools(f"stdio:{sys.executable} {script}")


# -- calls ----------------------------------------------------------------------------------------

async def test_an_agent_uses_an_mcp_tool_and_reads_its_result() -> None:
    agent = Agent("adder", tools=list(calc().values()), model=calls_then_finish(use("add", a=2, b=40)))
    result = await agent.run("add 2 and 40")
    assert result.ok and result.output == "42"
    assert calls(result)[0].observation == "42" and calls(result)[0].error is None


async def test_arguments_are_checked_before_anything_is_sent(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    tools = calc(env={"CALC_COUNTS": str(counts)})
    agent = Agent("counter", tools=list(tools.values()), model=calls_then_finish(
        use("counter", "c1", label=7), use("counter", "c2", label="x", extra=1), use("counter", "c3", label="ok")))
    result = await agent.run("count")
    bad = [s for s in calls(result) if s.error == "invalid_arguments"]
    assert [s.call.id for s in bad] == ["c1", "c2"]
    assert "label: 7 is not of type 'string'" in bad[0].observation
    assert "unknown field(s) extra" in bad[1].observation
    assert counts.read_text().splitlines() == ["ok"]  # only the valid call reached the server


async def test_results_of_every_kind_become_observations() -> None:
    tools = calc()
    assert await tools["shout"].call({"text": "hi", "times": None}) == "HI"  # null: the server's default
    assert await tools["shout"].call({"text": "hi", "times": 2}) == "HI HI"
    assert await tools["picture"].call({}) == "a red dot\n[image of type image/png, 72 bytes, not shown]"
    assert await tools["stats"].call({}) == {"mean": 2.5, "n": 4}
    agent = Agent("failer", tools=[tools["fail"]], model=calls_then_finish(use("fail", why="no disk")))
    step = calls(await agent.run("fail"))[0]
    assert (step.observation, step.error) == ("cannot: no disk", "failed")


async def test_calls_made_at_once_run_at_once() -> None:
    slow = calc()["slow"]
    start = time.monotonic()
    got = await asyncio.gather(*[slow.call({"seconds": 0.5}) for _ in range(4)])
    assert got == ["waited 0.5"] * 4
    assert time.monotonic() - start < 1.9  # four 0.5 s calls, not one after another (2 s)


async def test_a_slow_server_is_a_timeout_observation_not_a_hang() -> None:
    tools = calc(timeout=0.5)
    agent = Agent("waiter", tools=[tools["slow"]], model=calls_then_finish(use("slow", seconds=30)))
    start = time.monotonic()
    result = await agent.run("wait")
    assert time.monotonic() - start < 10
    assert calls(result)[0].error == "timeout" and "slow on the MCP server" in calls(result)[0].observation
    assert await tools["add"].call({"a": 1, "b": 1}) == "2"  # the connection is still good


async def test_a_server_that_dies_mid_run_is_an_observation_and_is_started_again(tmp_path: Path) -> None:
    tools = calc(env={"CALC_COUNTS": str(tmp_path / "c")})  # a connection of its own
    first = await tools["pid"].call({})
    agent = Agent("breaker", tools=list(tools.values()), model=calls_then_finish(use("crash"), use("pid", "p2")))
    result = await agent.run("crash it, then ask again")
    crashed, again = calls(result)[0], calls(result)[1]
    assert crashed.error == "failed" and "stopped during the call to crash" in crashed.observation
    assert again.error is None and again.observation != first  # a new server process answered
    assert result.ok


def test_closing_stops_a_stdio_server(tmp_path: Path) -> None:
    tools = calc(env={"CALC_COUNTS": str(tmp_path / "close")})
    pid = int(asyncio.run(tools["pid"].call({})))
    os.kill(pid, 0)  # running
    connection_to(tools["pid"].connection.spec).close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server {pid} still runs after its connection closed")


@pytest.mark.parametrize("how, url", [("http", "http://127.0.0.1:{}/mcp"), ("sse", "sse:http://127.0.0.1:{}/sse")])
async def test_http_and_sse_servers_work_and_a_killed_one_is_an_observation(how: str, url: str) -> None:
    proc, port = start_http(how)
    tools = {t.name: t for t in mcp_tools(url.format(port), include=["add", "slow"], timeout=1)}
    assert await tools["add"].call({"a": 20, "b": 22}) == "42"
    agent = Agent("remote", tools=list(tools.values()), model=calls_then_finish(use("slow", seconds=5)))
    assert calls(await agent.run("wait"))[0].error == "timeout"
    proc.kill()
    proc.wait()
    agent = Agent("remote", tools=list(tools.values()), model=calls_then_finish(use("add", a=1, b=2)))
    step = calls(await agent.run("add"))[0]
    assert step.error == "failed" and "MCP server http://127.0.0.1" in step.observation


# -- durable runs, personas, the command ----------------------------------------------------------

async def test_a_durable_run_journals_mcp_calls_and_a_resumed_run_does_not_send_them_again(tmp_path: Path) -> None:
    counts = tmp_path / "counts"
    tools = calc(env={"CALC_COUNTS": str(counts)})
    broken = [True]

    def reply(info: RequestInfo) -> Any:
        n = sum(m.role == "assistant" for m in info.messages)
        if n == 0:
            return use("counter", "c1", label="once")
        if broken[0]:
            raise RuntimeError("provider down")
        return use("finish", "f", answer=info.messages[-1].content or "")

    agent = Agent(name="mcp_durable", tools=[tools["counter"]], model=FunctionModel(reply))
    durable.registry.entries.pop("mcp_durable", None)
    rt = durable.launch(f"sqlite:///{tmp_path}/runs.db", targets=[agent])
    try:
        run = await rt.start(agent, "count once")
        with pytest.raises(durable.DurableRunError, match="provider down"):
            await run.result()
        assert [(s.name, s.kind) for s in await run.steps()][:2] == [("mcp_durable/model/0", "model"),
                                                                     ("mcp_durable/tool/c1", "tool")]
        broken[0] = False
        again = await run.resume()
        assert (await again.result()).output == "counted once"
    finally:
        rt.shutdown()
        durable.registry.entries.pop("mcp_durable", None)
    assert counts.read_text().splitlines() == ["once"]  # replayed from the journal, not sent again


def test_a_persona_names_mcp_servers_and_gets_their_tools() -> None:
    text = ("---\nname: mathy\nrole: a calculator\ngoal: add numbers\ntools: [calculator]\nmcp:\n"
            f"  - {{server: '{CALC}', include: [add, pid], requires_approval: [pid]}}\n---\n")
    persona = parse(text, "mathy.md")
    agent = persona.agent(model=ScriptedModel(["done"]))
    assert sorted(agent.tools) == ["add", "calculator", "pid"]
    assert agent.tools["pid"].requires_approval and not agent.tools["add"].requires_approval


def test_a_personas_mcp_mistakes_are_named_with_its_other_mistakes() -> None:
    text = ("---\nname: mathy\nrole: a calculator\ngoal: add\nmcp:\n  - python -m srv\n"
            "  - {server: 'stdio:x', inclde: [add]}\n  - 3\nmax_steps: 0\n---\n")
    with pytest.raises(PersonaError) as info:
        parse(text, "mathy.md")
    message = str(info.value)
    assert message.startswith("4 mistakes:")
    assert "mcp: MCP server 'python -m srv' is not one agentflow can reach. Fix: write 'stdio:COMMAND ARGS'" in message
    assert "unknown field 'inclde' (did you mean 'include'?)" in message
    assert "3 is not an MCP server" in message and "max_steps: must be at least 1" in message


def test_the_chat_team_gets_a_task_agent_per_mcp_server(caplog: pytest.LogCaptureFixture) -> None:
    from agentflow.cli.team import ChatConfig, checked_model, team

    model = ScriptedModel(["hi"])
    boss = team(ChatConfig(personas=["planner"], mcp=[CALC]), model)
    helper = boss.agents["calc"]
    assert "add" in helper.tools and "'calc'" in helper.description and "add" in helper.description
    assert "loose" not in helper.tools and "left out the MCP tool 'loose'" in caplog.text
    with pytest.raises(ConfigError, match=r"--mcp: MCP server 'nope' is not one agentflow can reach"):
        checked_model(ChatConfig(model="scripted", mcp=["nope"]))


# -- serving targets as MCP tools -----------------------------------------------------------------

SERVE = f"stdio:{sys.executable} -m agentflow.cli mcp-serve tests/mcp_servers/serve_app.py"


async def test_mcp_serve_offers_agents_and_workflows_as_tools() -> None:
    tools = {t.name: t for t in mcp_tools(SERVE)}
    assert sorted(tools) == ["doubler", "echo"]
    assert tools["echo"].spec.description == "Repeats the task it is given."
    assert tools["doubler"].spec.parameters["required"] == ["n", "label"]
    assert await tools["echo"].call({"task": "hello"}) == "echo: hello"
    assert json.loads(await tools["doubler"].call({"n": 4, "label": None})) == {"label": "twice", "value": 8}
    agent = Agent("caller", tools=[tools["echo"]], model=calls_then_finish(use("echo", task="give up")))
    step = calls(await agent.run("ask echo"))[0]
    assert step.error == "failed"
    assert "echo ended without a result: agent 'echo' reached max_steps=1" in step.observation


async def test_mcp_serve_over_http() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agentflow.cli", "mcp-serve", "tests/mcp_servers/serve_app.py:echo",
                             "--http", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    programs.started.append(proc)
    assert proc.stderr is not None
    assert f"on http://127.0.0.1:{port}/mcp" in proc.stderr.readline().decode()
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "mcp-serve --http did not listen"
            time.sleep(0.05)
    (echo,) = mcp_tools(f"http://127.0.0.1:{port}/mcp")
    assert await echo.call({"task": "over http"}) == "echo: over http"
