"""`agentflow serve` for real: a uvicorn process on 127.0.0.1, driven over HTTP by httpx.

The server serves tests/server_app.py with the FunctionModel of tests/server_model.py (given with
`--model FILE.py`). Side effects are counted in a log file the served tools append to, so runs
whose server is SIGKILLed and restarted can be shown to repeat nothing that had finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-MARKER-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `agentflow serve` process (restartable on the same database and side-effect log)."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.tmp, self.args, self.env = tmp, list(args), env or {}
        self.db, self.log, self.gate = tmp / "runs.db", tmp / "effects.log", tmp / "gate"
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "agentflow.cli", "serve", "tests/server_app.py", "--model",
                "tests/server_model.py", "--db", f"sqlite:///{self.db}", "--log-level", "warning", *extra]

    def start(self, **env: str) -> Server:
        self.port = free_port()
        environment = {**os.environ, "SERVER_LOG": str(self.log), "SERVER_GATE": str(self.gate),
                       "OPENAI_API_KEY": SECRET, **self.env, **env}
        self.stderr = open(self.tmp / f"server-{self.port}.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(self.command("--port", str(self.port), *self.args), cwd=ROOT, env=environment,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not answer in 60 s: {self.output()}")

    def output(self) -> str:
        self.stderr.flush()
        return (self.tmp / f"server-{self.port}.log").read_text()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stderr.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.stderr.close()

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def effects(self) -> Counter[str]:
        return Counter(self.log.read_text().splitlines()) if self.log.exists() else Counter()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    made = Server(tmp_path)
    yield made.start()
    made.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that need no restart."""
    made = Server(tmp_path_factory.mktemp("shared"))
    yield made.start()
    made.stop()


def start(http: httpx.Client, target: str, input: Any, **more: Any) -> str:
    r = http.post("/runs", json={"target": target, "input": input, **more})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def finished(http: httpx.Client, run_id: str) -> dict[str, Any]:
    r = http.get(f"/runs/{run_id}", params={"wait": 30})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["status"] in ("succeeded", "failed", "cancelled"), view
    return view


def until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def waiting_on(http: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    return until(lambda: http.get(f"/runs/{run_id}").json()["requests"])


def read_events(http: httpx.Client, run_id: str, **headers: str) -> list[tuple[str | None, str, Any]]:
    """Every SSE event of the run's stream, to its `end`: (id, event, data)."""
    out: list[tuple[str | None, str, Any]] = []
    with http.stream("GET", f"/runs/{run_id}/events", headers=headers, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ident, kind = None, "message"
        for line in r.iter_lines():
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((ident, kind, json.loads(line[6:])))
                if kind == "end":
                    return out
                ident, kind = None, "message"
    return out


# -- the endpoints ---------------------------------------------------------------------------------


def test_targets_list_what_runs_here_with_their_schemas(shared: Server) -> None:
    with shared.client() as http:
        targets = {t["name"]: t for t in http.get("/targets").json()}
    assert {n: t["kind"] for n, t in targets.items()} == {
        "planner": "agent", "booker": "agent", "asker": "agent", "chat": "agent", "worker": "agent",
        "boss": "supervisor", "failing": "agent", "calc": "workflow", "tidier": "agent", "reviewer": "supervisor"}
    assert targets["planner"]["input_schema"]["type"] == "string"
    assert targets["planner"]["output_schema"]["required"] == ["city", "flights"]
    calc = targets["calc"]["input_schema"]
    assert calc["required"] == ["x"] and calc["properties"]["y"]["default"] == 1
    assert targets["calc"]["output_schema"] == {"type": "integer"}


def test_openapi_describes_each_targets_run_request(shared: Server) -> None:
    with shared.client() as http:
        spec = http.get("/openapi.json").json()
        assert http.get("/docs").status_code == 200
    body = spec["paths"]["/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "target"
    assert set(body["discriminator"]["mapping"]) == {"planner", "booker", "asker", "chat", "worker", "boss",
                                                     "failing", "calc", "tidier", "reviewer"}
    calc = spec["components"]["schemas"]["RunCalc"]["properties"]["input"]
    assert calc == {"$ref": "#/components/schemas/CalcInput"}
    assert {"/runs/{run_id}/events", "/runs/{run_id}/replies/{request_id}", "/sessions/{session_id}/messages"} \
        <= set(spec["paths"])


def test_a_run_starts_at_once_and_ends_with_typed_output_and_usage(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "planner", "plan a trip to Lisbon")
        view = finished(http, run_id)
    assert view["status"] == "succeeded" and view["kind"] == "agent" and view["stop_reason"] == "finish"
    assert view["output"] == {"city": "Lisbon", "flights": ["LH106 to Lisbon", "AF206 to Lisbon"]}
    assert view["input"] == "plan a trip to Lisbon" and view["requests"] == []
    assert view["usage"]["requests"] == 2 and view["usage"]["input_tokens"] > 0
    assert view["created_at"] <= view["updated_at"]


def test_a_workflow_run_takes_its_inputs_by_name_and_returns_every_tasks_output(shared: Server) -> None:
    with shared.client() as http:
        view = finished(http, start(http, "calc", {"x": 20, "y": 2}))
        defaulted = finished(http, start(http, "calc", {"x": 30}))
    assert (view["output"], view["outputs"], view["input"]) == (42, {"double": 40, "plus": 42}, {"x": 20, "y": 2})
    assert defaulted["output"] == 61


def test_a_run_can_be_started_and_waited_for_in_one_request(shared: Server) -> None:
    with shared.client() as http:
        r = http.post("/runs", params={"wait": 30}, json={"target": "calc", "input": {"x": 60}})
        asking = http.post("/runs", params={"wait": 30}, json={"target": "asker", "input": "where to?"})
    assert r.status_code == 201 and (r.json()["status"], r.json()["output"]) == ("succeeded", 121)
    assert asking.json()["status"] == "waiting" and asking.json()["requests"][0]["kind"] == "question"


def test_the_same_id_twice_is_the_same_run(shared: Server) -> None:
    with shared.client() as http:
        first = http.post("/runs", json={"target": "calc", "input": {"x": 5}, "id": "calc-once"})
        again = http.post("/runs", json={"target": "calc", "input": {"x": 5}, "id": "calc-once"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"] == "calc-once"
        assert finished(http, "calc-once")["output"] == 11
        after = http.post("/runs", json={"target": "calc", "input": {"x": 5}, "id": "calc-once"})
        assert (after.status_code, after.json()["status"]) == (200, "succeeded")
        other = http.post("/runs", json={"target": "calc", "input": {"x": 6}, "id": "calc-once"})
        assert other.status_code == 409 and other.json()["field"] == "id"
    assert shared.effects()["end double:5"] == 1


def test_runs_are_listed_newest_first_by_target_and_status_in_pages(shared: Server) -> None:
    with shared.client() as http:
        ids = [start(http, "calc", {"x": 100 + i}) for i in range(3)]
        for i in ids:
            finished(http, i)
        page = http.get("/runs", params={"target": "calc", "status": "succeeded", "limit": 2}).json()
        assert [r["id"] for r in page["runs"]] == ids[::-1][:2] and page["next_offset"] == 2
        rest = http.get("/runs", params={"target": "calc", "limit": 2, "offset": 2}).json()
        assert rest["runs"][0]["id"] == ids[0]
        assert all(r["target"] == "calc" and r["status"] == "succeeded" for r in page["runs"] + rest["runs"])
        bad = http.get("/runs", params={"status": "done"})
        assert bad.status_code == 422 and bad.json()["field"] == "status"


def test_events_stream_live_to_an_early_client_and_from_the_journal_to_a_late_one(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "boss", "find flights, gated")
        early: list[Any] = []
        reader = threading.Thread(target=lambda: early.extend(read_events(shared.client(), run_id)))
        reader.start()
        assert http.get(f"/runs/{run_id}").json()["usage"]["requests"] == 0  # the client is in before any step
        shared.gate.touch()
        reader.join(60)
        late = read_events(http, run_id)
        resumed = read_events(http, run_id, **{"Last-Event-ID": "3"})
    kinds = [k for _, k, _ in early]
    assert kinds[0] == "run_start" and kinds[-2:] == ["run_end", "end"]
    assert [(d["agent"], k) for _, k, d in early if k in ("run_start", "run_end")] == [
        ("boss", "run_start"), ("boss/worker", "run_start"), ("boss/worker", "run_end"), ("boss", "run_end")]
    assert late == early  # the same events, numbered the same, read back from the database
    assert [int(i) for i, _, _ in early[:-1]] == list(range(1, len(early)))
    assert resumed == early[3:]
    end = early[-1][2]
    assert end["status"] == "succeeded" and "the worker says" in end["output"]


def test_reply_text_streams_as_it_is_generated(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "chat", "hello there")
        events = read_events(http, run_id)
    chunks = [d["text"] for _, k, d in events if k == "text"]
    assert len(chunks) == 5 and "".join(chunks) == "You told me: hello there" == events[-1][2]["output"]


def test_an_approval_is_asked_and_answered_over_http(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "booker", "book a flight to Oslo")
        (request,) = waiting_on(http, run_id)
        assert request["kind"] == "approval" and request["tool"] == "book"
        assert json.loads(request["arguments"]) == {"flight": "LH104 to Oslo"}
        assert http.get(f"/runs/{run_id}").json()["status"] == "waiting"
        wrong = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"answer": "sure"})
        assert wrong.status_code == 422 and wrong.json()["error"] == "reply_mismatch"
        unknown = http.post(f"/runs/{run_id}/replies/booker/approve/nope", json={"approve": True})
        assert unknown.status_code == 409 and request["id"] in unknown.json()["message"]
        sent = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True})
        assert sent.status_code == 202
        view = finished(http, run_id)
        again = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True})
        assert again.status_code == 409 and again.json()["error"] == "request_not_open"
    assert view["status"] == "succeeded" and view["output"] == "booked LH104 to Oslo"
    assert shared.effects()["end book:LH104 to Oslo"] == 1


def test_a_refusal_reaches_the_model_with_its_reason(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "booker", "book a flight to Rome")
        (request,) = waiting_on(http, run_id)
        http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": False, "reason": "too pricey"})
        view = finished(http, run_id)
    assert "not approved (too pricey)" in view["output"]
    assert shared.effects()["end book:LH104 to Rome"] == 0


def test_a_question_is_answered_over_http(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "asker", "where to?")
        (request,) = waiting_on(http, run_id)
        assert (request["kind"], request["question"]) == ("question", "Which city?")
        bad = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True})
        assert bad.status_code == 422 and bad.json()["field"] == "answer"
        not_text = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"answer": 42})
        assert not_text.status_code == 422 and not_text.json()["field"] == "answer"
        http.post(f"/runs/{run_id}/replies/{request['id']}", json={"answer": "Kyoto"})
        assert finished(http, run_id)["output"] == "Kyoto"


def test_a_plan_is_reviewed_and_edited_over_http(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "reviewer", "tidy the disk")
        (request,) = waiting_on(http, run_id)
        assert request["kind"] == "plan" and request["plan"]["steps"][0]["task"] == "delete everything"
        edited = {**request["plan"], "steps": [{**request["plan"]["steps"][0], "task": "delete the temp files"}]}
        bad = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True, "plan": {"steps": 3}})
        assert bad.status_code == 422 and bad.json()["field"].startswith("plan.")
        sent = http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True, "plan": edited})
        assert sent.status_code == 202
        view = finished(http, run_id)
    assert view["status"] == "succeeded" and "tidied: delete the temp files" in view["output"]
    assert "everything" not in view["output"]  # the plan as edited ran, not the one proposed


def test_a_waiting_run_is_cancelled_and_its_stream_ends(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "booker", "book a flight to Bern")
        waiting_on(http, run_id)
        r = http.post(f"/runs/{run_id}/cancel")
        assert r.status_code == 202 and r.json()["status"] == "cancelled"
        view = finished(http, run_id)
        assert view["status"] == "cancelled" and view["usage"]["requests"] == 2
        assert read_events(http, run_id)[-1][2]["status"] == "cancelled"
        again = http.post(f"/runs/{run_id}/cancel")
        assert again.status_code == 409 and again.json()["error"] == "run_ended"


def test_a_workflow_is_edited_and_rerun_and_only_the_descendants_run(shared: Server) -> None:
    with shared.client() as http:
        run_id = start(http, "calc", {"x": 7})
        assert finished(http, run_id)["output"] == 15
        bad = http.post(f"/runs/{run_id}/rerun", json={"changes": {"triple": 1}})
        assert bad.status_code == 422 and bad.json()["field"] == "changes.triple"
        wrong_type = http.post(f"/runs/{run_id}/rerun", json={"changes": {"double": "many"}})
        assert wrong_type.status_code == 422 and "double" in wrong_type.json()["message"]
        r = http.post(f"/runs/{run_id}/rerun", json={"changes": {"double": 100}})
        assert r.status_code == 201, r.text
        view = finished(http, r.json()["id"])
        agent_run = start(http, "planner", "plan a trip to Riga")
        finished(http, agent_run)
        refused = http.post(f"/runs/{agent_run}/rerun", json={"changes": {}})
        assert refused.status_code == 409 and refused.json()["error"] == "not_a_workflow"
    assert view["output"] == 101 and view["outputs"] == {"double": 100, "plus": 101}
    effects = shared.effects()
    assert effects["end double:7"] == 1 and effects["end plus:100+1"] == 1


def test_a_session_remembers_every_turn(shared: Server) -> None:
    with shared.client() as http:
        made = http.post("/sessions", json={"target": "chat", "id": "talk-1"})
        assert made.status_code == 201 and made.json()["target"] == "chat"
        assert http.post("/sessions", json={"target": "chat", "id": "talk-1"}).status_code == 200
        turn = http.post("/sessions/talk-1/messages", json={"text": "I live in Berlin"}).json()
        assert (turn["run"], turn["turn"]) == ("talk-1/1", 1)
        assert finished(http, "talk-1/1")["session"] == "talk-1"
        second = http.post("/sessions/talk-1/messages", json={"text": "where do I live?"}).json()
        reply = finished(http, second["run"])["output"]
        history = http.get("/sessions/talk-1").json()
    assert reply == "You told me: I live in Berlin | where do I live?"
    assert [(t["turn"], t["text"], t["status"]) for t in history["turns"]] == [
        (1, "I live in Berlin", "succeeded"), (2, "where do I live?", "succeeded")]
    assert history["turns"][1]["reply"] == reply
    assert [m["role"] for m in history["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_a_session_refuses_a_message_while_its_turn_runs(shared: Server) -> None:
    with shared.client() as http:
        sid = http.post("/sessions", json={"target": "booker"}).json()["id"]
        first = http.post(f"/sessions/{sid}/messages", json={"text": "book a flight to Nice"}).json()
        waiting_on(http, first["run"])
        busy = http.post(f"/sessions/{sid}/messages", json={"text": "and a hotel"})
        assert busy.status_code == 409 and first["run"] in busy.json()["message"]


def test_200_concurrent_runs_all_finish(shared: Server) -> None:
    async def main() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=shared.url, timeout=120) as http:
            made = await asyncio.gather(*(http.post("/runs", json={"target": "calc", "input": {"x": 1000 + i}})
                                          for i in range(200)))
            assert all(r.status_code == 201 for r in made), [r.text for r in made if r.status_code != 201][:3]
            views = await asyncio.gather(*(http.get(f"/runs/{r.json()['id']}", params={"wait": 60}) for r in made))
            return [v.json() for v in views]

    views = asyncio.run(main())
    assert [v["output"] for v in views] == [2 * (1000 + i) + 1 for i in range(200)]
    effects = shared.effects()
    assert all(effects[f"end double:{1000 + i}"] == 1 for i in range(200))


# -- bad input -------------------------------------------------------------------------------------


BAD: list[tuple[str, str, Any, int, str, str | None]] = [
    ("POST", "/runs", {"target": "nope", "input": "x"}, 422, "unknown_target", "target"),
    ("POST", "/runs", {"input": "x"}, 422, "unknown_target", "target"),
    ("POST", "/runs", {"target": "calc", "input": {"x": "many"}}, 422, "invalid_request", "input.x"),
    ("POST", "/runs", {"target": "calc", "input": {}}, 422, "invalid_request", "input.x"),
    ("POST", "/runs", {"target": "calc", "input": {"x": 1, "z": 2}}, 422, "invalid_request", "input.z"),
    ("POST", "/runs", {"target": "planner", "input": ""}, 422, "invalid_request", "input"),
    ("POST", "/runs", {"target": "planner", "input": {"task": 1}}, 422, "invalid_request", "input"),
    ("POST", "/runs", {"target": "planner", "input": "x", "id": "has space"}, 422, "invalid_request", "id"),
    ("POST", "/runs", {"target": "planner", "input": "x", "colour": "red"}, 422, "invalid_request", "colour"),
    ("POST", "/runs", [1, 2], 422, "invalid_request", None),
    ("GET", "/runs/no-such-run", None, 404, "unknown_run", "run_id"),
    ("GET", "/runs/no-such-run/events", None, 404, "unknown_run", "run_id"),
    ("POST", "/runs/no-such-run/cancel", None, 404, "unknown_run", "run_id"),
    ("POST", "/runs/no-such-run/replies/x", {"approve": True}, 404, "unknown_run", "run_id"),
    ("POST", "/runs/no-such-run/rerun", {}, 404, "unknown_run", "run_id"),
    ("GET", "/runs", {"limit": 0}, 422, "invalid_request", "limit"),
    ("GET", "/runs/x", {"wait": 999}, 422, "invalid_request", "wait"),
    ("POST", "/sessions", {"target": "calc"}, 422, "not_conversational", "target"),
    ("POST", "/sessions", {"target": "nobody"}, 422, "unknown_target", "target"),
    ("POST", "/sessions/nope/messages", {"text": "hi"}, 404, "unknown_session", "session_id"),
    ("GET", "/sessions/nope", None, 404, "unknown_session", "session_id"),
    ("POST", "/sessions/nope/messages", {"text": ""}, 422, "invalid_request", "text"),
    ("GET", "/nowhere", None, 404, "not_found", None),
    ("DELETE", "/runs", None, 405, "method_not_allowed", None),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "field"), BAD,
                         ids=[f"{m} {p} {json.dumps(b)[:40]}" for m, p, b, *_ in BAD])
def test_each_bad_request_gets_a_named_error_with_the_fix(shared: Server, method: str, path: str, body: Any,
                                                         status: int, error: str, field: str | None) -> None:
    with shared.client() as http:
        if method == "GET":
            r = http.get(path, params=body)
        else:
            r = http.request(method, path, json=body)
        assert (r.status_code, r.json()["error"], r.json()["field"]) == (status, error, field), r.text
        assert "Fix:" in r.json()["message"] or status in (404, 405) and field is None
        assert http.get("/health").status_code == 200


def test_bodies_that_are_not_json_or_too_large_are_refused(shared: Server) -> None:
    with shared.client() as http:
        broken = http.post("/runs", content=b'{"target": ', headers={"content-type": "application/json"})
        assert broken.status_code == 422 and broken.json()["error"] == "invalid_json"
        huge = http.post("/runs", json={"target": "planner", "input": "x" * (2 << 20)})
        assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"target": "planner", "input": "'
            for _ in range(40):
                yield b"y" * 65536
            yield b'"}'

        streamed = http.post("/runs", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert http.get("/health").status_code == 200


def test_random_bodies_never_crash_the_server(shared: Server) -> None:
    import random

    rng = random.Random(7)
    values: list[Any] = [None, 0, -1, 1.5, "", "x" * 300, [], {}, [{}], {"a": {"b": []}}, True, "\u0000", "é"]
    paths = ["/runs", "/sessions", "/runs/x/cancel", "/runs/x/rerun", "/runs/x/replies/y", "/sessions/x/messages"]
    keys = ["target", "input", "id", "changes", "inputs", "approve", "answer", "plan", "text", "reason", "zzz"]
    with shared.client() as http:
        for _ in range(150):
            body = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 4))} \
                if rng.random() < 0.8 else rng.choice(values)
            r = http.post(rng.choice(paths), json=body)
            assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
            assert set(r.json()) == {"error", "message", "field"}
        assert http.get("/health").status_code == 200


def test_a_failed_runs_error_shows_neither_the_key_nor_paths(shared: Server) -> None:
    with shared.client() as http:
        view = finished(http, start(http, "failing", "go to the moon"))
    assert view["status"] == "failed" and "provider said no" in view["error"]
    assert SECRET not in json.dumps(view) and "/var/log" not in json.dumps(view) and "[redacted]" in view["error"]
    assert "provider.log" in view["error"]


# -- restarts, kills, tokens ---------------------------------------------------------------------


def test_a_run_waiting_for_approval_survives_a_killed_server(server: Server) -> None:
    with server.client() as http:
        run_id = start(http, "booker", "book a flight to Porto")
        (request,) = waiting_on(http, run_id)
    server.kill()
    server.start()
    with server.client() as http:
        assert [r["id"] for r in waiting_on(http, run_id)] == [request["id"]]  # once the new server resumed it
        assert http.get(f"/runs/{run_id}").json()["status"] == "waiting"
        assert http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True}).status_code == 202
        done = finished(http, run_id)
        events = read_events(http, run_id)
    assert done["output"] == "booked LH105 to Porto"
    effects = server.effects()
    assert effects["end search:Porto"] == 1 and effects["end book:LH105 to Porto"] == 1
    kinds = [k for _, k, _ in events]
    assert kinds.count("run_start") == 1 and kinds.count("human_request") == 1  # replays were not logged again
    assert kinds[-2:] == ["run_end", "end"] and kinds.count("human_reply") == 1


def test_a_run_killed_mid_step_finishes_after_a_restart_and_repeats_only_that_step(server: Server) -> None:
    server.stop()
    server.start(SERVER_SLOW="book:LH105 to Turin")
    with server.client() as http:
        run_id = start(http, "booker", "book a flight to Turin")
        (request,) = waiting_on(http, run_id)
        http.post(f"/runs/{run_id}/replies/{request['id']}", json={"approve": True})
    until(lambda: server.effects()["start book:LH105 to Turin"] == 1)
    server.kill()
    server.start()
    with server.client() as http:
        view = finished(http, run_id)
    assert view["status"] == "succeeded" and view["output"] == "booked LH105 to Turin"
    effects = server.effects()
    assert effects["end search:Turin"] == 1  # finished before the kill: not again
    assert (effects["start book:LH105 to Turin"], effects["end book:LH105 to Turin"]) == (2, 1)  # cut short: once more


def test_a_session_survives_a_restart(server: Server) -> None:
    with server.client() as http:
        sid = http.post("/sessions", json={"target": "chat"}).json()["id"]
        finished(http, http.post(f"/sessions/{sid}/messages", json={"text": "I live in Berlin"}).json()["run"])
    server.kill()
    server.start()
    with server.client() as http:
        turn = http.post(f"/sessions/{sid}/messages", json={"text": "where do I live?"}).json()
        assert turn["turn"] == 2
        assert "I live in Berlin" in finished(http, turn["run"])["output"]


def test_a_token_is_required_when_given_and_off_loopback(tmp_path: Path) -> None:
    refused = subprocess.run(Server(tmp_path).command("--host", "0.0.0.0", "--port", str(free_port())), cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "SERVER_LOG": str(tmp_path / "log")})
    assert refused.returncode == 2 and "without a token" in refused.stderr and "--token" in refused.stderr
    server = Server(tmp_path, env={"AGENTFLOW_TOKEN": "s3cret-token"}).start()
    try:
        with server.client() as http:
            missing = http.get("/targets")
            assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
            assert missing.headers["www-authenticate"] == "Bearer"
            assert http.get("/targets", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert http.get("/targets", headers={"Authorization": "Basic s3cret-token"}).status_code == 401
            assert http.get("/health").status_code == 200 and http.get("/openapi.json").status_code == 200
        with server.client(Authorization="Bearer s3cret-token") as http:
            assert http.get("/targets").status_code == 200
            assert finished(http, start(http, "calc", {"x": 1}))["output"] == 3
    finally:
        server.stop()


def test_sigterm_shuts_the_server_down_cleanly(server: Server) -> None:
    assert server.proc is not None
    server.proc.terminate()
    assert server.proc.wait(20) == 0
    assert "Traceback" not in server.output()


def test_the_app_mounted_by_hand_launches_its_own_runtime(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SERVER_DB": f"sqlite:///{tmp_path}/runs.db", "SERVER_LOG": str(tmp_path / "log")}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "tests.server_asgi:api", "--port", str(port),
                             "--log-level", "info", "--no-access-log"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: _answers(f"http://127.0.0.1:{port}/health"), 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert [t["name"] for t in http.get("/targets").json()] == ["calc", "chat"]
            assert finished(http, start(http, "calc", {"x": 4}))["output"] == 9
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM and "Application shutdown complete" in err, err  # uvicorn's way out
    assert "Traceback" not in err


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
