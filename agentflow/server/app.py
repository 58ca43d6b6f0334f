"""The REST API over durable runs: `app(targets)` is the ASGI app `agentflow serve` runs.

Every run started here is a durable run (`agentflow.durable`): it survives the server's death
and is resumed by the next server on the same database. The endpoints read and steer runs
through the runtime's public API only, so a run started by a worker or the CLI looks the same.
"""

# No `from __future__ import annotations`: FastAPI reads the run body's type, built per app, at runtime.
import asyncio
import json
import re
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Union

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, ValidationError

from .. import __version__, durable
from ..core.errors import ConfigError
from ..core.messages import Usage
from ..durable.registry import Target, registry
from ..durable.runs import DurableRun, RunInfo, turn_number
from ..runtime.requests import HumanReply
from ..teams.planning import Plan
from ..telemetry import TraceParent
from .api import (
    DURABLE_STATUS,
    ENDED,
    STATUS,
    HumanRequestView,
    MessageIn,
    Reply,
    ReplySent,
    Rerun,
    RunCreated,
    RunPage,
    RunSummary,
    RunView,
    SessionCreate,
    SessionInfo,
    SessionView,
    Status,
    TargetInfo,
    TurnStarted,
    TurnView,
    when,
)
from .guard import ApiError, BodyLimit, check_token, install, redact
from .targets import Served, served

KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream, so proxies keep it open
MAX_WAIT = 60.0
TAKE_WAIT = 5.0  # seconds a reply waits for its run to take it before answering "sent"
RunId = Annotated[str, Path(description="a run id (session turns are `SESSION/N`)")]


def app(targets: Sequence[Target] | Mapping[str, Target], *, runtime: durable.Runtime | None = None,
        db: str = durable.DEFAULT_URL, token: str | None = None, max_body: int = 1 << 20,
        poll: float = 1.0) -> FastAPI:
    """The API serving `targets` (by name: their own, or the mapping's keys).

    With `runtime` (a launched `durable.Runtime`) the app uses it and leaves it running at
    shutdown; otherwise it launches one on `db` at startup. Either way it records every run's
    events (`record_events`) so clients can watch them. `token`: every request but /docs,
    /openapi.json and /health must send `Authorization: Bearer <token>`. `max_body`: bytes a
    request body may hold. `poll`: seconds between looks at a run executing in another process."""
    offered = served(targets)
    for name, s in offered.items():
        registry.add(s.target, name)
    server = _Server(offered, runtime, db, poll)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncGenerator[None]:
        server.open()
        try:
            yield
        finally:
            server.close()

    bearer = HTTPBearer(auto_error=False, description="the token the server was started with")

    async def authorized(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        check_token(token, None if credentials is None else f"Bearer {credentials.credentials}")

    api = FastAPI(title="agentflow", version=__version__, lifespan=lifespan,
                  description="Start, watch and steer durable runs of agents, supervisors and workflows.")
    router = APIRouter(dependencies=[Depends(authorized)] if token else [])
    api.state.target_names = list(offered)
    api.add_middleware(BodyLimit, limit=max_body)
    api.add_middleware(TraceParent)  # a caller's `traceparent` goes on into the runs it starts
    install(api)
    models = [s.request_model() for s in offered.values()]
    RunBody: Any = models[0] if len(models) == 1 else Annotated[Union[tuple(models)], Field(discriminator="target")]  # noqa: UP007

    @api.get("/health", tags=["server"])
    async def health() -> dict[str, str]:
        """Open to all (no token): for load balancers and start-up checks."""
        return {"status": "ok"}

    @router.get("/targets", tags=["targets"])
    async def list_targets() -> list[TargetInfo]:
        """What can be run here, with each one's input and output schema."""
        return [TargetInfo(name=n, kind=s.kind, description=s.description, input_schema=s.input_schema(),
                           output_schema=s.output_schema()) for n, s in offered.items()]

    @router.post("/runs", status_code=201, tags=["runs"], responses={200: {"model": RunCreated | RunView,
                                                                        "description": "the run with this id"}})
    async def start_run(body: Annotated[RunBody, Body()], response: Response,  # pyright: ignore
                        wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description=(
                            "seconds to wait for the run to end or to wait for a person, then answer with "
                            "the run as GET /runs/{id} shows it"))] = 0) -> RunCreated | RunView:
        """Start a durable run; it goes on in the background. The same `id` again is the same run (200)."""
        created, known = await server.start(offered[body.target], body.input, body.id)
        response.status_code = 201 if created else 200
        if not wait:
            return known
        await server.rt.get(known.id).wait(wait, poll=poll, or_asking=True)
        return await server.view(await server.rt.info(known.id, outcome=True))

    @router.get("/runs", tags=["runs"])
    async def list_runs(target: str | None = None, status: Status | None = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50,
                        offset: Annotated[int, Query(ge=0)] = 0) -> RunPage:
        """A page of runs, newest first."""
        found = await server.rt.runs(status=None if status is None else DURABLE_STATUS[status], target=target,
                                     limit=limit + 1, offset=offset)
        return RunPage(runs=[server.summary(i) for i in found[:limit]],
                       next_offset=offset + limit if len(found) > limit else None)

    @router.get("/runs/{run_id:path}/events", tags=["runs"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": (
                 "Server-Sent Events: `id` is the event's number, `event` its kind, `data` the event as JSON; "
                 "the last one, `end`, holds the run's status and output")}})
    async def run_events(run_id: RunId, request: Request, after: Annotated[int, Query(ge=0)] = 0) -> StreamingResponse:
        """The run's events so far (from the database), then each new one as it happens, then `end`.
        A reconnecting client's `Last-Event-ID` (or `?after=N`) skips what it has."""
        await server.exists(run_id)
        last = request.headers.get("last-event-id", "")
        start = max(after, int(last) if last.isdigit() else 0)
        return StreamingResponse(server.sse(server.rt.get(run_id), start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.post("/runs/{run_id:path}/replies/{request_id:path}", status_code=202, tags=["runs"])
    async def reply(run_id: RunId, request_id: str, body: Reply) -> ReplySent:
        """Answer an approval, a question or a plan review the run waits on; the run resumes. `taken`: the
        run has the reply; `sent`: it is stored for the run, which is not executing right now."""
        info = await server.need(run_id)
        waits = {str(w["name"]): w for w in info.waiting}
        wait = waits.get(request_id)
        if wait is None:
            raise ApiError(409, "request_not_open", f"run {run_id!r} has no open request {request_id!r} (open: "
                           f"{', '.join(waits) or 'none'}): it was answered, timed out or never asked. Fix: "
                           f"reply to one of the `requests` of GET /runs/{run_id}", "request_id")
        run = server.rt.get(run_id)
        await run.reply(_reply(str(wait["kind"]), body), request_id)

        async def taken(_: Any) -> bool:  # the run has it: a client's next GET sees the run going on
            return request_id not in {str(w["name"]) for w in await run.waiting()}
        status = "taken" if await run.wait_for(taken, TAKE_WAIT, poll=poll) else "sent"
        return ReplySent(run=run_id, request=request_id, status=status)

    @router.post("/runs/{run_id:path}/cancel", status_code=202, tags=["runs"])
    async def cancel(run_id: RunId) -> RunCreated:
        """Stop the run at its next step (or now, if it waits for a person); `POST .../rerun` or
        `agentflow runs resume` can continue it later."""
        info = await server.need(run_id)
        if STATUS[info.status] in ENDED:
            raise ApiError(409, "run_ended", f"run {run_id!r} has already ended ({STATUS[info.status]}): there is "
                                             "nothing to cancel")
        await server.rt.get(run_id).cancel()
        return RunCreated(id=run_id, target=info.target, status="cancelled")

    @router.post("/runs/{run_id:path}/rerun", status_code=201, tags=["runs"])
    async def rerun(run_id: RunId, body: Rerun) -> RunCreated:
        """A new run of a finished workflow run that keeps every output still valid: `changes` replace
        tasks' outputs (a person's correction), and only what lies downstream runs again."""
        return await server.rerun(await server.need(run_id), body)

    @router.get("/runs/{run_id:path}", tags=["runs"])
    async def get_run(run_id: RunId, wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description=(
            "seconds to wait, before answering, for the run to end or to wait for a person"))] = 0) -> RunView:
        """Status, output (typed JSON) once done, usage, open human requests, timestamps."""
        await server.exists(run_id)
        if wait:
            await server.rt.get(run_id).wait(wait, poll=poll, or_asking=True)
        return await server.view(await server.rt.info(run_id, outcome=True))

    @router.post("/sessions", status_code=201, tags=["sessions"],
              responses={200: {"model": SessionInfo, "description": "the session with this id"}})
    async def new_session(body: SessionCreate, response: Response) -> SessionInfo:
        """A conversation with an agent or supervisor; it remembers every turn, across restarts."""
        info, created = await server.new_session(body)
        response.status_code = 201 if created else 200
        return info

    @router.post("/sessions/{session_id}/messages", status_code=201, tags=["sessions"])
    async def message(session_id: str, body: MessageIn) -> TurnStarted:
        """One user message: a turn, run durably; watch it like any run (its id is `SESSION/N`)."""
        return await server.message(session_id, body.text)

    @router.get("/sessions/{session_id}", tags=["sessions"])
    async def get_session(session_id: str) -> SessionView:
        """The session's turns (what was said, what came back) and the conversation so far."""
        return await server.session_view(session_id)

    api.include_router(router)
    return api


def _reply(kind: str, body: Reply) -> HumanReply:
    """The body as a reply to a request of `kind`, or a 422 naming what does not fit."""
    if kind == "question":
        if body.answer is None or body.approve is not None or body.plan is not None:
            raise ApiError(422, "reply_mismatch", 'this request is a question. Fix: send {"answer": "..."}', "answer")
        return HumanReply(answer=body.answer)
    if body.approve is None or body.answer is not None or (kind == "approval" and body.plan is not None):
        shape = '{"approve": true|false, "reason"?: "..."}' + (', with "plan"?: {...} to replace it' if kind == "plan"
                                                               else "")
        raise ApiError(422, "reply_mismatch", f"this request is {'a plan review' if kind == 'plan' else 'an approval'}."
                                              f" Fix: send {shape}", "approve")
    plan = None
    if body.plan is not None:
        try:
            plan = Plan.model_validate(body.plan).model_dump(mode="json")
        except ValidationError as e:
            where = ".".join(str(x) for x in e.errors()[0]["loc"])
            raise ApiError(422, "invalid_plan", f"plan.{where}: {e.errors()[0]['msg']}. Fix: send a plan shaped "
                                                "like the one under review", f"plan.{where}") from None
    return HumanReply(approved=body.approve, reason=body.reason, plan=plan)


class _Server:
    """The app's state: the runtime, the served targets, and one lock per session being spoken to."""

    def __init__(self, offered: dict[str, Served], runtime: durable.Runtime | None, db: str, poll: float) -> None:
        self.offered, self.given, self.db, self.poll = offered, runtime, db, poll
        self._rt: durable.Runtime | None = runtime
        self.locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def rt(self) -> durable.Runtime:
        if self._rt is None:
            raise RuntimeError("the app has not started: run it under an ASGI server (its lifespan launches it)")
        return self._rt

    def open(self) -> None:
        if self.given is None:
            self._rt = durable.launch(self.db, record_events=True)
        else:
            self.given.record_events = True

    def close(self) -> None:
        if self.given is None and self._rt is not None:
            self._rt.shutdown()
            self._rt = None

    # -- runs -------------------------------------------------------------------------------

    async def find(self, run_id: str) -> RunInfo | None:
        try:
            return await self.rt.info(run_id)
        except ConfigError:  # no such run
            return None

    async def need(self, run_id: str) -> RunInfo:
        if (info := await self.find(run_id)) is None:
            raise ApiError(404, "unknown_run", f"there is no run {run_id!r}. Fix: use an id from POST /runs or "
                                               "GET /runs", "run_id")
        return info

    async def exists(self, run_id: str) -> None:
        if run_id not in self.rt.tasks:  # executing here: it exists, no query needed
            await self.need(run_id)

    async def start(self, s: Served, given: Any, run_id: str | None) -> tuple[bool, RunCreated]:
        task, inputs = s.arguments(given)
        if run_id is not None and (known := await self.find(run_id)) is not None:
            payload = registry.get(s.name).payload(task, inputs, [], None)
            if known.target != s.name or known.task != task or known.inputs != payload.get("inputs", {}):
                raise ApiError(409, "id_taken", f"run {run_id!r} exists with another target or input. Fix: give "
                                                "another id, or none (the server makes one)", "id")
            return False, RunCreated(id=run_id, target=s.name, status=STATUS[known.status])
        run = await self.rt.start(s.name, task, id=run_id, **inputs)
        return True, RunCreated(id=run.id, target=s.name, status="running")

    async def rerun(self, info: RunInfo, body: Rerun) -> RunCreated:
        s = self.offered.get(info.target)
        if s is None or s.kind != "workflow":
            what = "is not served here" if s is None else f"is {'an' if s.kind == 'agent' else 'a'} {s.kind}"
            raise ApiError(409, "not_a_workflow", f"run {info.id!r} cannot be re-run: its target {info.target!r} "
                                                  f"{what}; only workflow runs can be edited and re-run")
        if STATUS[info.status] not in ("succeeded", "failed"):
            raise ApiError(409, "run_not_ended", f"run {info.id!r} is {STATUS[info.status]}. Fix: wait for it to "
                                                 "succeed or fail, then re-run it")
        if unknown := [n for n in body.changes if n not in s.target.graph.nodes]:  # type: ignore[union-attr]
            raise ApiError(422, "unknown_task", f"{unknown[0]!r} is not a task of workflow {s.name!r}. Fix: use one "
                                                f"of {', '.join(s.target.graph.nodes)}", f"changes.{unknown[0]}")  # type: ignore[union-attr]
        if body.id is not None and await self.find(body.id) is not None:
            raise ApiError(409, "id_taken", f"run {body.id!r} exists. Fix: give another id, or none", "id")
        run = await self.rt.rerun(info.id, body.changes, id=body.id, **body.inputs)
        return RunCreated(id=run.id, target=s.name, status="running")

    def summary(self, info: RunInfo) -> RunSummary:
        return RunSummary(**self._base(info), open_requests=len(info.waiting))

    def _base(self, info: RunInfo) -> dict[str, Any]:
        s = self.offered.get(info.target)
        return {"id": info.id, "target": info.target, "kind": None if s is None else s.kind,
                "status": STATUS[info.status], "input": info.task if info.task is not None else info.inputs,
                "session": _session_of(info.id), "created_at": when(info.created_at),
                "updated_at": when(info.updated_at)}

    async def view(self, info: RunInfo) -> RunView:
        out = info.outcome or {}
        workflow = out.get("kind") == "workflow"
        usage = Usage.model_validate(out["usage"]) if "usage" in out else await self.rt.get(info.id).usage()
        error = info.error or (out.get("error") if workflow else None)
        return RunView(**self._base(info), output=out.get("output") if info.status == "done" else None,
                       outputs=out.get("outputs") if workflow else None, stop_reason=out.get("stop_reason"),
                       detail=redact(out["detail"]) if out.get("detail") else None,
                       error=None if error is None else redact(str(error)), usage=usage,
                       requests=[_request(w) for w in info.waiting])

    async def sse(self, run: DurableRun, after: int) -> AsyncIterator[str]:
        """The run's events as Server-Sent Events, a comment when quiet, then `end`."""
        queue: asyncio.Queue[tuple[int, dict[str, Any]] | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for item in run.events(after, poll=self.poll):
                    queue.put_nowait(item)
            finally:
                queue.put_nowait(None)

        pumping = asyncio.ensure_future(pump())
        getter: asyncio.Future[tuple[int, dict[str, Any]] | None] | None = None
        try:
            while True:
                getter = getter or asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter}, timeout=KEEPALIVE)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                item, getter = getter.result(), None
                if item is None:
                    break
                seq, data = item
                yield f"id: {seq}\nevent: {data.get('kind', 'event')}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            pumping.result()  # a failure reading the log ends the stream without `end`: the client retries
            final = await self.view(await self.rt.info(run.id, outcome=True))
            end = final.model_dump(mode="json", include={"id", "status", "output", "outputs", "stop_reason", "error",
                                                         "usage"})
            yield f"event: end\ndata: {json.dumps(end, ensure_ascii=False)}\n\n"
        finally:
            pumping.cancel()
            if getter is not None:
                getter.cancel()

    # -- sessions ---------------------------------------------------------------------------

    async def new_session(self, body: SessionCreate) -> tuple[SessionInfo, bool]:
        s = self.offered.get(body.target)
        if s is None:
            raise ApiError(422, "unknown_target", f"there is no target {body.target!r}. Fix: use one of "
                                                  f"{', '.join(self.offered)} (GET /targets)", "target")
        if s.kind == "workflow":
            raise ApiError(422, "not_conversational", f"{body.target!r} is a workflow: a session talks to an agent or "
                                                      "a supervisor. Fix: start workflow runs with POST /runs",
                           "target")
        known = None if body.id is None else await self.rt.store.session(body.id)
        if known is not None and known[0] != s.name:
            raise ApiError(409, "id_taken", f"session {body.id!r} talks to {known[0]!r}. Fix: give another id, or "
                                            "none", "id")
        session = await self.rt.session(s.name, body.id)
        found = await self.rt.store.session(session.id)
        return SessionInfo(id=session.id, target=s.name, created_at=when(None if found is None else found[1])), \
            known is None

    async def reopen(self, session_id: str) -> durable.DurableSession:
        try:
            return await self.rt.reopen(session_id)
        except ConfigError:
            raise ApiError(404, "unknown_session", f"there is no session {session_id!r}. Fix: make one with POST "
                                                   "/sessions", "session_id") from None

    async def message(self, session_id: str, text: str) -> TurnStarted:
        lock = self.locks.get(session_id)
        if lock is None:
            lock = self.locks[session_id] = asyncio.Lock()
        async with lock:  # one turn at a time: each continues the conversation the last one left
            session = await self.reopen(session_id)
            if session.target not in self.offered:
                raise ApiError(409, "not_served", f"session {session_id!r} talks to {session.target!r}, which this "
                                                  "server does not serve")
            last = session.last_turn()
            if last is not None and not await last.ended():
                raise ApiError(409, "turn_running", f"turn {last.id!r} of this session has not ended yet. Fix: wait "
                                                    f"for it (GET /runs/{last.id}?wait=30), then send the message")
            run = await session.begin(text)
            if (await run.info()).task != text:  # another server took this turn's number first
                raise ApiError(409, "turn_running", f"another message became turn {run.id!r} first. Fix: wait for "
                                                    "it to end, then send yours again")
            return TurnStarted(session=session_id, turn=session.turns, run=run.id, status="running")

    async def session_view(self, session_id: str) -> SessionView:
        session = await self.reopen(session_id)
        found = await self.rt.store.session(session_id)
        turns = [TurnView(turn=turn_number(t.id), run=t.id, status=STATUS[t.status], text=t.task,
                          reply=(t.outcome or {}).get("output"), stop_reason=(t.outcome or {}).get("stop_reason"),
                          error=None if t.error is None else redact(t.error))
                 for t in await session.history()]
        return SessionView(id=session_id, target=session.target, created_at=when(None if found is None else found[1]),
                           turns=turns, messages=[m.model_dump(mode="json") for m in session.messages])


def _request(wait: dict[str, Any]) -> HumanRequestView:
    return HumanRequestView(id=str(wait["name"]), kind=wait["kind"], question=wait["question"],
                            agent=wait.get("agent") or "", tool=wait.get("tool"), arguments=wait.get("arguments"),
                            plan=wait.get("plan"), asked_at=when(wait.get("asked_at")), timeout=wait.get("timeout"))


def _session_of(run_id: str) -> str | None:
    found = re.fullmatch(r"(.+)/\d+", run_id)
    return None if found is None else found[1]

