"""OpenTelemetry traces: runs, model calls and tool calls as GenAI spans, nested as the agent tree is.

Spans are read back from the SDK's in-memory exporter, and once from an OTLP/HTTP collector on
loopback that decodes what the real OTLP exporter sends. A durable run resumed after its process
stopped links to its first attempt; the REST server continues a caller's `traceparent`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentflow import Agent, FunctionModel, ModelError, ScriptedModel, Supervisor, ToolCall, durable, telemetry, tool
from agentflow.models import RetryPolicy
from agentflow.models.openai import OpenAIModel
from agentflow.models.scripted import RequestInfo
from agentflow.workflow import Workflow, task
from tests.helpers import Crew
from tests.llm_server import LLMServer, error_reply, openai_reply

ROOT = Path(__file__).resolve().parent.parent
MARKER = "sk-MARKER-otel-5d1e9b7a3c"
TOKEN = "tok-in-no-variable-81c4f0"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.arguments",
                "gen_ai.tool.call.result")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory; the module's state is put back afterwards."""
    for name in ("_mode", "_provider", "_capture", "_tracer"):
        monkeypatch.setattr(telemetry, name, getattr(telemetry, name))
    for name in telemetry.CONTENT_ENV:
        monkeypatch.delenv(name, raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider)
    yield exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def everything(span: ReadableSpan) -> str:
    """Every text a span carries, as an exporter would send it."""
    return json.dumps({"name": span.name, "attributes": dict(span.attributes or {}),
                       "events": [(e.name, dict(e.attributes or {})) for e in span.events],
                       "links": [dict(link.attributes or {}) for link in span.links],
                       "status": span.status.description, "resource": dict(span.resource.attributes)}, default=str)


def use(name: str, ident: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    await asyncio.sleep(0.03)
    return f"value of {key}"


# -- one agent ------------------------------------------------------------------------------------


async def test_an_agent_run_is_a_span_holding_its_model_and_tool_calls_with_their_times(
        spans: InMemorySpanExporter) -> None:
    model = ScriptedModel([use("lookup", "c1", key="k1"), use("finish", "c2", answer="secret plan")], delay=0.05)
    result = await Agent("finder", tools=[lookup], model=model).run("find the secret plan")
    assert result.output == "secret plan"
    found = by_name(spans)
    [run] = found["invoke_agent finder"]
    chats = found["chat scripted"]
    [tool_span] = found["execute_tool lookup"]
    assert dict(run.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "finder", "agentflow.path": "finder",
        "agentflow.stop_reason": "finish", "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens}
    assert run.parent is None and len(chats) == 2
    steps = [s for s in result.steps if s.kind == "model"]
    for chat, step in zip(sorted(chats, key=lambda s: s.start_time or 0), steps, strict=True):
        a = dict(chat.attributes or {})
        assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"], a["gen_ai.request.model"]) == \
            ("chat", "test", "scripted")
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == \
            (step.response.usage.input_tokens, step.response.usage.output_tokens)
        assert parent_of(chat) == span_id(run)
        assert (chat.end_time or 0) - (chat.start_time or 0) >= 0.045e9  # the model's 50 ms, not the event's instant
    a = dict(tool_span.attributes or {})
    assert (a["gen_ai.operation.name"], a["gen_ai.tool.name"], a["gen_ai.tool.call.id"]) == \
        ("execute_tool", "lookup", "c1")
    assert parent_of(tool_span) == span_id(run) and (tool_span.end_time or 0) - (tool_span.start_time or 0) >= 0.025e9
    assert found["execute_tool finish"][0].attributes["gen_ai.tool.call.id"] == "c2"  # type: ignore[index]
    for s in spans.get_finished_spans():  # no contents by default
        assert not set(CONTENT_KEYS) & set(s.attributes or {}) and "secret plan" not in everything(s)
        assert (run.start_time or 0) <= (s.start_time or 0) and (s.end_time or 0) <= (run.end_time or 0)


@pytest.mark.parametrize("switch", ["argument", *telemetry.CONTENT_ENV])
async def test_contents_are_added_with_one_switch(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch,
                                                  switch: str) -> None:
    if switch == "argument":
        telemetry.instrument(telemetry._provider, capture_content=True)
    else:
        monkeypatch.setenv(switch, "true")
    model = ScriptedModel([use("lookup", "c1", key="k1"), use("finish", "c2", answer="the plan")])
    await Agent("finder", tools=[lookup], model=model).run("find the plan")
    found = by_name(spans)
    run = found["invoke_agent finder"][0].attributes or {}
    assert json.loads(str(run["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "find the plan"}]}]
    assert "the plan" in str(run["gen_ai.output.messages"])
    first = min(found["chat scripted"], key=lambda s: s.start_time or 0).attributes or {}
    [said] = json.loads(str(first["gen_ai.output.messages"]))
    assert said["parts"] == [{"type": "tool_call", "id": "c1", "name": "lookup", "arguments": '{"key": "k1"}'}]
    used = found["execute_tool lookup"][0].attributes or {}
    assert (used["gen_ai.tool.call.arguments"], used["gen_ai.tool.call.result"]) == ('{"key": "k1"}', "value of k1")


async def test_tracing_off_gives_a_run_no_trace_and_no_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenTelemetry loaded (this module imports it) but no provider set and no instrument(): nothing to pay."""
    monkeypatch.setattr(telemetry, "_mode", "auto")
    monkeypatch.setattr(telemetry, "_provider", None)
    run = Agent("quiet", model=ScriptedModel(["hi"]), ends_with="text").start("hello")
    assert run.scope.trace is None and run.scope.emit is None
    telemetry.uninstrument()
    assert Agent("quiet", model=ScriptedModel(["hi"])).start("hello").scope.trace is None


def test_agentflow_runs_without_opentelemetry_and_says_what_to_install() -> None:
    program = """
import asyncio, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
from agentflow import Agent, ScriptedModel, telemetry
print(asyncio.run(Agent("a", model=ScriptedModel(["fine"]), ends_with="text").run("hi")).output)
try:
    telemetry.instrument()
except Exception as e:
    print(type(e).__name__, e)
print(any(m.startswith("opentelemetry") for m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "fine", "ConfigError agentflow.telemetry.instrument() needs OpenTelemetry, which is not installed. Fix: "
                "pip install 'agentflow[otel]'", "False"]


def test_a_global_tracer_provider_is_enough_and_uninstrument_stops_it() -> None:
    program = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from agentflow import Agent, ScriptedModel, telemetry
agent = Agent("a", model=ScriptedModel(["one", "two"]), ends_with="text")
asyncio.run(agent.run("before any provider"))
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
asyncio.run(agent.run("with the global provider"))
print(sorted(s.name for s in exporter.get_finished_spans()))
telemetry.uninstrument()
asyncio.run(Agent("b", model=ScriptedModel(["three"]), ends_with="text").run("after uninstrument"))
print(len(exporter.get_finished_spans()))
"""
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['chat scripted', 'invoke_agent a']", "2"]


# -- trees ------------------------------------------------------------------------------------------


async def test_a_supervisor_tree_nests_supervisor_tool_call_task_agent_and_its_calls(
        spans: InMemorySpanExporter) -> None:
    def researcher_model(info: RequestInfo) -> Any:
        asked = (info.messages[1].content or "").splitlines()[0]
        if info.messages[-1].role == "user":
            return use("lookup", f"l-{asked}", key=asked)
        return use("finish", f"f-{asked}", answer=f"found {asked}")

    researcher = Agent("researcher", "You research.", tools=[lookup], model=FunctionModel(researcher_model))
    brain = ScriptedModel([[use("researcher", "r1", task="A"), use("researcher", "r2", task="B")], "A and B found."])
    result = await Supervisor([researcher], model=brain).run("find A and B")
    assert result.ok and result.output == "A and B found."
    found = by_name(spans)
    [top] = found["invoke_agent supervisor"]
    delegations = {s.attributes["gen_ai.tool.call.id"]: s for s in found["execute_tool researcher"]}  # type: ignore[index]
    assert set(delegations) == {"r1", "r2"} and all(parent_of(d) == span_id(top) for d in delegations.values())
    runs = found["invoke_agent researcher"]
    assert len(runs) == 2 and {parent_of(r) for r in runs} == {span_id(d) for d in delegations.values()}
    for r in runs:  # the same agent twice at once: each run's calls are under its own span, never the other's
        under = [s for s in spans.get_finished_spans() if parent_of(s) == span_id(r)]
        task_of = next(k for k, d in delegations.items() if span_id(d) == parent_of(r))
        key = {"r1": "A", "r2": "B"}[task_of]
        assert sorted(s.name for s in under) == ["chat function", "chat function", "execute_tool finish",
                                                 "execute_tool lookup"]
        assert {s.attributes.get("gen_ai.tool.call.id") for s in under if s.name.startswith("execute")} == \
            {f"l-{key}", f"f-{key}"}  # type: ignore[union-attr]
        assert dict(r.attributes or {})["agentflow.path"] == "supervisor/researcher"
    assert {t.context.trace_id for t in spans.get_finished_spans()} == {top.context.trace_id}  # type: ignore[union-attr]


async def test_a_worklist_supervisors_tasks_are_children_of_its_run(spans: InMemorySpanExporter) -> None:
    crew = Crew(delay=0.02)

    def plan(info: RequestInfo) -> Any:
        if len(info.messages) <= 2:
            return [use("add_task", "t1", id="a", description="job a", agent="worker", priority=2, depends_on=[]),
                    use("add_task", "t2", id="b", description="job b", agent="worker", priority=1, depends_on=["a"])]
        return "Both jobs are done."

    sup = Supervisor([crew.agent("worker")], model=FunctionModel(plan), mode="worklist", name="lister")
    assert (await sup.run("do the jobs")).output == "Both jobs are done."
    found = by_name(spans)
    [top] = found["invoke_agent lister"]
    workers = found["invoke_agent worker"]
    assert len(workers) == 2 and all(parent_of(w) == span_id(top) for w in workers)
    for w in workers:
        assert [s.name for s in spans.get_finished_spans() if parent_of(s) == span_id(w)] == \
            ["chat function", "execute_tool finish"]
    assert sum(parent_of(s) == span_id(top) for s in found["execute_tool add_task"]) == 2


async def test_a_workflow_is_a_span_over_its_tasks_and_their_model_calls(spans: InMemorySpanExporter) -> None:
    @task("Name a colour")
    async def colour() -> str: ...

    @task("Name a fruit that is {colour}")
    async def fruit(colour: str) -> str: ...

    result = await Workflow(colour >> fruit, model=ScriptedModel(["red", "cherry"]), name="pick").run()
    assert result.output == "cherry"
    found = by_name(spans)
    [flow] = found["invoke_workflow pick"]
    assert dict(flow.attributes or {})["gen_ai.workflow.name"] == "pick"
    tasks = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("task ")}
    assert set(tasks) == {"task colour", "task fruit"} and all(parent_of(t) == span_id(flow) for t in tasks.values())
    chats = found["chat scripted"]
    assert sorted(parent_of(c) or 0 for c in chats) == sorted(span_id(t) for t in tasks.values())
    assert all(dict(t.attributes or {})["agentflow.task.status"] == "done" for t in tasks.values())


# -- errors ---------------------------------------------------------------------------------------------


async def test_a_failing_tool_and_a_failing_model_set_error_type_and_status(spans: InMemorySpanExporter) -> None:
    @tool
    def broken() -> str:
        """Always fails."""
        raise ValueError("disk on fire")

    def reply(info: RequestInfo) -> Any:
        if info.last.role == "user":
            return use("broken", "b1")
        raise ModelError("test:flaky: HTTP 503 after 3 tries. Fix: try later.", provider="test", model="flaky")

    agent = Agent("fragile", tools=[broken], model=FunctionModel(reply, name="flaky"))
    with pytest.raises(ModelError):
        await agent.run("try it")
    found = by_name(spans)
    [failed_tool] = found["execute_tool broken"]
    assert dict(failed_tool.attributes or {})["error.type"] == "raised"
    assert failed_tool.status.status_code == StatusCode.ERROR
    assert failed_tool.status.description is None  # the observation is content: not shown by default
    chats = sorted(found["chat flaky"], key=lambda s: s.start_time or 0)
    assert [c.status.status_code for c in chats] == [StatusCode.UNSET, StatusCode.ERROR]
    assert dict(chats[1].attributes or {})["error.type"] == "ModelError"
    assert "HTTP 503" in (chats[1].status.description or "")
    [run] = found["invoke_agent fragile"]
    assert (dict(run.attributes or {})["error.type"], run.status.status_code) == ("ModelError", StatusCode.ERROR)
    assert dict(run.attributes or {})["agentflow.stop_reason"] == "error"


# -- durable runs -----------------------------------------------------------------------------------------


async def test_a_resumed_durable_run_links_to_its_first_attempt_and_draws_no_replayed_step_again(
        spans: InMemorySpanExporter, tmp_path: Path) -> None:
    @tool(requires_approval=True)
    def wipe() -> str:
        """Wipe."""
        return "wiped"

    agent = Agent(name="wiper", tools=[wipe], model=ScriptedModel([[use("wipe", "w")], "done"]), ends_with="text")
    url = f"sqlite:///{tmp_path}/runs.db"
    durable.registry.entries.clear()
    rt = durable.launch(url, targets=[agent])
    try:
        run = await rt.start(agent, "wipe it")
        await until(run.waiting)
        executing = list(rt.tasks.values())
    finally:
        rt.shutdown()  # as if the process stopped: the run stays pending, waiting for its approval
    await asyncio.wait(executing, timeout=10)  # the attempt has heard it was stopped
    [first] = by_name(spans)["invoke_agent wiper"]
    assert dict(first.attributes or {})["agentflow.run_id"] == run.id and not first.links
    durable.registry.entries.clear()
    rt = durable.launch(url, targets=[agent])  # recovers the run: a second attempt, in a new trace
    try:
        run = rt.get(run.id)
        await until(run.waiting)
        await run.approve()
        assert (await run.result()).output == "done"
        assert telemetry.NOTE not in [s.name for s in await run.steps()]  # a note, not a step users see
        noted = [r for r in await rt.store.load(run.id) if r.name == telemetry.NOTE]
    finally:
        rt.shutdown()
    found = by_name(spans)
    attempts = sorted(found["invoke_agent wiper"], key=lambda s: s.start_time or 0)
    assert len(attempts) == 2 and attempts[0] is not attempts[1]
    second = attempts[1]
    [link] = second.links
    assert (link.context.trace_id, link.context.span_id) == (first.context.trace_id, first.context.span_id)  # type: ignore[union-attr]
    assert dict(second.attributes or {})["agentflow.resumed"] is True
    assert [n.output for n in noted] == [{"trace_id": f"{first.context.trace_id:032x}",  # type: ignore[union-attr]
                                          "span_id": f"{first.context.span_id:016x}"}]  # type: ignore[union-attr]
    chats = found["chat scripted"]
    assert len(chats) == 2  # the first call, replayed from the journal by the second attempt, is drawn once
    assert [parent_of(c) for c in sorted(chats, key=lambda s: s.start_time or 0)] == [span_id(first), span_id(second)]
    [wiped] = found["execute_tool wipe"]
    assert parent_of(wiped) == span_id(second)


async def until(check: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return value


async def test_the_rest_server_continues_a_callers_trace_and_shows_no_token(
        spans: InMemorySpanExporter, tmp_path: Path) -> None:
    from agentflow.server import app

    agent = Agent("adder", model=ScriptedModel(["5"]), ends_with="text")
    durable.registry.entries.clear()
    rt = durable.launch(f"sqlite:///{tmp_path}/runs.db", targets=[agent])
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    try:
        api = app([agent], runtime=rt, token=MARKER)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://test") as http:
            r = await http.post("/runs", params={"wait": 10}, json={"target": "adder", "input": "add 2 and 3"},
                                headers={"traceparent": f"00-{trace_id}-{parent}-01",
                                         "Authorization": f"Bearer {MARKER}"})
            assert r.status_code == 201, r.text
            assert r.json()["output"] == "5"
            plain = await http.post("/runs", params={"wait": 10}, json={"target": "adder", "input": "again"},
                                    headers={"Authorization": f"Bearer {MARKER}"})
            assert plain.status_code == 201, plain.text
    finally:
        rt.shutdown()
    runs = sorted(by_name(spans)["invoke_agent adder"], key=lambda s: s.start_time or 0)
    assert len(runs) == 2
    continued, fresh = runs
    assert f"{continued.context.trace_id:032x}" == trace_id and f"{parent_of(continued):016x}" == parent  # type: ignore[union-attr]
    assert continued.parent is not None and continued.parent.is_remote
    assert fresh.parent is None and f"{fresh.context.trace_id:032x}" != trace_id  # type: ignore[union-attr]
    for s in spans.get_finished_spans():
        assert MARKER not in everything(s)


# -- secrets ------------------------------------------------------------------------------------------------


async def test_no_span_or_log_holds_the_api_key_even_with_contents_on(
        spans: InMemorySpanExporter, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", MARKER)
    caplog.set_level(logging.DEBUG)
    telemetry.instrument(telemetry._provider, capture_content=True)  # the strictest case: every text goes in

    @tool
    def env_dump() -> str:
        """Returns what a careless tool might: the key itself, and an auth header with a token of no variable."""
        return f"OPENAI_API_KEY={os.environ['OPENAI_API_KEY']}; Authorization: Bearer {TOKEN}"

    model = OpenAIModel("gpt-4o-mini", base_url=llm_server.url + "/v1",
                        retry=RetryPolicy(attempts=2, initial_delay=0.01, max_delay=0.02))
    llm_server.add(openai_reply(tool_calls=[("c1", "env_dump", {})]),
                   openai_reply(tool_calls=[("c2", "finish", {"answer": "done"})]))
    result = await Agent("leaky", tools=[env_dump], model=model).run(f"use the key {MARKER}")
    assert result.output == "done"
    llm_server.add(*[error_reply(401, f"Incorrect API key provided: {MARKER}") for _ in range(2)])
    with pytest.raises(ModelError):
        await Agent("refused", model=model).run("hello")
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {MARKER}"  # the key was really sent
    exported = spans.get_finished_spans()
    names = {s.name for s in exported}
    assert {"invoke_agent leaky", "execute_tool env_dump", "chat gpt-4o-mini", "invoke_agent refused"} <= names
    failed = [s for s in exported if s.name == "chat gpt-4o-mini" and s.status.status_code == StatusCode.ERROR]
    assert failed and "401" in (failed[0].status.description or "")
    dumped = next(s for s in exported if s.name == "execute_tool env_dump").attributes or {}
    assert dumped["gen_ai.tool.call.result"] == "OPENAI_API_KEY=[redacted]; Authorization: Bearer [redacted]"
    for s in exported:
        assert MARKER not in everything(s) and TOKEN not in everything(s), everything(s)
    assert MARKER not in caplog.text


# -- OTLP ----------------------------------------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP trace collector on 127.0.0.1: decodes every export request it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.spans: list[Any] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        collector.spans.extend(ss.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_spans_reach_an_otlp_http_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    for name in ("_mode", "_provider", "_capture", "_tracer"):
        monkeypatch.setattr(telemetry, name, getattr(telemetry, name))
    monkeypatch.setenv("OPENAI_API_KEY", MARKER)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    collector = Collector()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.url)))
    try:
        telemetry.instrument(provider)
        model = ScriptedModel([use("lookup", "c1", key="k1"), use("finish", "c2", answer="v")])
        assert (await Agent("shipper", tools=[lookup], model=model).run("ship it")).output == "v"
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
        collector.close()
    assert collector.requests and all(path == "/v1/traces" for path, _, _ in collector.requests)
    assert collector.requests[0][1]["content-type"] == "application/x-protobuf"
    got = {s.name: s for s in collector.spans}
    assert set(got) == {"invoke_agent shipper", "chat scripted", "execute_tool lookup", "execute_tool finish"}

    def attributes(span: Any) -> dict[str, Any]:
        return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}

    assert attributes(got["execute_tool lookup"])["gen_ai.tool.call.id"] == "c1"
    assert attributes(got["chat scripted"])["gen_ai.request.model"] == "scripted"
    assert got["execute_tool lookup"].parent_span_id == got["invoke_agent shipper"].span_id
    assert all(MARKER.encode() not in body for _, _, body in collector.requests)
