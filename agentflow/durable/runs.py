"""A durable run seen from outside: status, steps, result, replies to its questions, edits.

Everything here reads or writes the database through DBOS's client API, so it works the same
from the process running the run, from another process, and from the `agentflow runs` CLI.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from dbos import SetWorkflowID
from pydantic import BaseModel

from ..core.errors import AgentflowError, ConfigError
from ..core.messages import Message, Usage, close_open_calls
from ..core.result import RunResult
from ..runtime.requests import HumanReply
from ..runtime.runner import TRACE_NOTE
from ..teams.planning import Plan
from .registry import Entry, registry

if TYPE_CHECKING:
    from .runtime import Runtime

Status = Literal["queued", "running", "waiting", "done", "failed", "cancelled"]
FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
_STATUS: dict[str, Status] = {"ENQUEUED": "queued", "DELAYED": "queued", "PENDING": "running", "SUCCESS": "done",
                              "ERROR": "failed", "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed", "CANCELLED": "cancelled"}


class RunInfo(BaseModel):
    """One run's summary. `waiting` lists the questions it waits on (approval, question, plan)."""

    id: str
    target: str
    status: Status
    task: str | None = None
    inputs: dict[str, Any] = {}
    created_at: float | None = None
    updated_at: float | None = None
    executor: str | None = None
    waiting: list[dict[str, Any]] = []
    error: str | None = None
    outcome: dict[str, Any] | None = None  # with `info(id, outcome=True)`: the result as stored (JSON), or
    # the partial result of a failed run


class StepRecord(BaseModel):
    """One journaled step: `name` is its path in the run tree (`boss/counter/tool/call_1`)."""

    position: int
    name: str
    kind: str
    output: Any = None
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float | None = None


class DurableRunError(AgentflowError):
    """A durable run failed; `result` holds what it finished (decoded), when it left anything."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def info_of(wf: Any, waiting: list[dict[str, Any]] | None) -> RunInfo:
    args = (wf.input or {}).get("args", ()) if isinstance(wf.input, dict) else ()
    target = args[0] if args else "?"
    payload: dict[str, Any] = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
    status = _STATUS.get(wf.status, "running")
    if status in ("running", "queued") and waiting:
        status = "waiting"
    error = None if wf.error is None else str(wf.error)
    outcome = wf.output if isinstance(wf.output, dict) else getattr(wf.error, "data", None)
    return RunInfo(id=wf.workflow_id, target=target, status=status, task=payload.get("task"),
                   inputs=payload.get("inputs") or {}, created_at=_s(wf.created_at), updated_at=_s(wf.updated_at),
                   executor=wf.executor_id, waiting=waiting or [], error=error,
                   outcome=outcome if isinstance(outcome, dict) else None)


def turn_number(run_id: str) -> int:
    """n of session turn `S/n`."""
    return int(run_id.rsplit("/", 1)[1])


def new_run_id(target: str) -> str:
    return f"{target}-{uuid.uuid4().hex[:12]}"


def _s(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _kind(name: str) -> str:
    for part, kind in (("/model/", "model"), ("/tool/", "tool"), ("/approve/", "approval"), ("/python", "python")):
        if part in name:
            return kind
    if name.endswith("/asked"):
        return "asked"
    return "wait" if name == "DBOS.recv" else ("dbos" if name.startswith("DBOS.") else "step")


class DurableRun:
    """A handle on one durable run, by id."""

    def __init__(self, runtime: Runtime, run_id: str, handle: Any = None, target: str | None = None) -> None:
        self.runtime, self.id = runtime, run_id
        self.changes: dict[str, Any] = {}
        self._handle = handle  # DBOS's own, for a run started in this process: awaited, not polled
        self._target = target

    def __repr__(self) -> str:
        return f"<DurableRun {self.id}>"

    async def info(self, *, outcome: bool = False) -> RunInfo:
        return await self.runtime.info(self.id, outcome=outcome)

    async def status(self) -> Status:
        return (await self.info()).status

    async def result(self) -> Any:
        """Wait for the end; the decoded `RunResult` or `WorkflowResult`. A failed run raises
        `DurableRunError` whose `.result` is what it finished."""
        handle = self._handle or await self.runtime.client.retrieve_workflow_async(self.id)
        try:
            data = await handle.get_result()
        except Exception as e:
            partial = getattr(e, "data", None)
            decoded = (await self._entry()).decode(partial) if isinstance(partial, dict) else None
            raise DurableRunError(f"run {self.id} failed: {e}", decoded) from e
        return (await self._entry()).decode(data)

    async def _entry(self) -> Entry:
        self._target = self._target or (await self.info()).target
        return registry.get(self._target)

    async def steps(self) -> list[StepRecord]:
        """Every journaled step in the order it was started, with outputs, usage and errors (DBOS's
        own operations, such as a human's reply arriving, among them)."""
        rows = await self.runtime.store.load(self.id)
        taken: list[tuple[float, str, Any, str | None, float | None]] = [
            (r.started_at, r.name, r.output, r.error, r.finished_at - r.started_at) for r in rows
            if r.name != TRACE_NOTE]  # a note for traces, not a step
        for d in await self.runtime.client.list_workflow_steps_async(self.id):
            started, finished = d["started_at_epoch_ms"], d["completed_at_epoch_ms"]
            taken.append((_s(started) or 0.0, d["function_name"], d["output"],
                          None if d["error"] is None else str(d["error"]),
                          (finished - started) / 1000 if started and finished else None))
        taken.sort(key=lambda t: t[0])
        out: list[StepRecord] = []
        for position, (_, name, output, error, seconds) in enumerate(taken):
            usage = output["usage"] if isinstance(output, dict) and isinstance(output.get("usage"), dict) else {}
            out.append(StepRecord(position=position, name=name, kind=_kind(name), output=output, error=error,
                                  input_tokens=usage.get("input_tokens", 0),
                                  output_tokens=usage.get("output_tokens", 0), seconds=seconds))
        return out

    async def usage(self) -> Usage:
        """What the run has spent so far: the usage of its journaled model calls."""
        total = Usage()
        for row in await self.runtime.store.load(self.id):
            if isinstance(row.output, dict) and isinstance(row.output.get("usage"), dict):
                total = total + Usage.model_validate(row.output["usage"])
        return total

    async def waiting(self) -> list[dict[str, Any]]:
        """The open questions: each has `name`, `kind` (approval, question, plan), `question`, and more."""
        if self.id in self.runtime.tasks:  # executing here: no query (no runner yet, or no more: no waits)
            runner = self.runtime.runners.get(self.id)
            return [] if runner is None else list(runner.waiting.values())
        return (await self.info()).waiting

    # -- replies ----------------------------------------------------------------------------

    async def reply(self, reply: HumanReply, name: str | None = None, kind: str | None = None) -> str:
        """Answer the open question `name` (or the only one of `kind`); returns its name."""
        if name is None:
            open_ = [w for w in await self.waiting() if kind is None or w["kind"] == kind]
            if len(open_) != 1:
                what = f"{kind} " if kind else ""
                listed = ", ".join(w["name"] for w in open_) or "none"
                raise ConfigError(f"run {self.id} has {len(open_)} open {what}questions ({listed}): name one")
            name = str(open_[0]["name"])
        await self.runtime.client.send_async(self.id, {"wait": name, "reply": reply.model_dump(mode="json")}, name)
        return name

    async def approve(self, name: str | None = None, *, reason: str | None = None) -> str:
        return await self.reply(HumanReply(approved=True, reason=reason), name, "approval")

    async def reject(self, reason: str | None = None, *, name: str | None = None) -> str:
        """Refuse a tool call; the model sees the refusal and `reason`."""
        return await self.reply(HumanReply(approved=False, reason=reason), name, "approval")

    async def answer(self, text: str, name: str | None = None) -> str:
        return await self.reply(HumanReply(answer=text), name, "question")

    async def review_plan(self, plan: Plan | None = None, *, accept: bool = True, reason: str | None = None,
                          name: str | None = None) -> str:
        """Accept the plan under review, replace it with `plan`, or refuse it (`accept=False`)."""
        reply = HumanReply(approved=accept, reason=reason, plan=None if plan is None else plan.model_dump(mode="json"))
        return await self.reply(reply, name, "plan")

    # -- control ----------------------------------------------------------------------------

    async def cancel(self) -> None:
        """Stop the run at its next step (the step it is paying for is kept), or now if it waits for a person."""
        waits = await self.waiting()
        await self.runtime.client.cancel_workflow_async(self.id)
        for w in waits:  # DBOS does not wake a waiting run: a message on each wait's topic does
            await self.runtime.client.send_async(self.id, {"wait": w["name"], "cancel": time.time()}, w["name"])

    async def ended(self) -> bool:
        """Whether the run is over (done, failed or cancelled); in this process, without a query."""
        return await self._ended(self.runtime.tasks.get(self.id))

    async def _ended(self, task: asyncio.Future[Any] | None) -> bool:
        if task is not None:  # executing here: DBOS's task is done once it has recorded the outcome
            return task.done()
        return (await self.status()) in ("done", "failed", "cancelled")

    async def wait(self, timeout: float, *, poll: float = 1.0, or_asking: bool = False) -> bool:
        """Wait up to `timeout` seconds for the run to end (or, with `or_asking`, to wait for a person);
        whether it did. A run executing in another process is looked at every `poll` seconds."""
        async def over(task: asyncio.Future[Any] | None) -> bool:
            return await self._ended(task) or or_asking and bool(await self.waiting())
        return await self.wait_for(over, timeout, poll=poll)

    async def wait_for(self, check: Callable[[asyncio.Future[Any] | None], Awaitable[bool]], timeout: float, *,
                       poll: float = 1.0) -> bool:
        """Wait up to `timeout` seconds for `check(task)` to hold (`task`: what executes the run here, if
        anything), looking again each time the run writes events in this process or ends, else every
        `poll` seconds; whether it held."""
        deadline = time.monotonic() + timeout
        log = self.runtime.event_log
        while True:
            task, seen = self.runtime.tasks.get(self.id), log.written.get(self.id, 0)  # before the look
            if await check(task):
                return True
            if (left := deadline - time.monotonic()) <= 0:
                return False
            await log.changed(self.id, min(left, poll), *(() if task is None else (task,)), after=seen)

    async def events(self, after: int = 0, *, poll: float = 1.0) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """The run's recorded events (`launch(record_events=True)`) numbered above `after`, then each
        new one as it is written, until the run ends: `(number, event as JSON)`. A run executing in
        another process is looked at every `poll` seconds."""
        while True:
            task = self.runtime.tasks.get(self.id)
            ended = await self._ended(task)  # before reading: what the run wrote before it ended is read below
            for seq, data in await self.runtime.event_log.read(self.id, after):
                after = seq
                yield seq, data
            if ended:
                return
            await self.runtime.event_log.changed(self.id, poll, *(() if task is None else (task,)), after=after)

    async def resume(self) -> DurableRun:
        """Run again from the journal: a cancelled or stuck run continues under its id; a failed one
        continues as a new run (DBOS keeps failures final) that replays every finished step."""
        info = await self.info()
        if info.status == "done":
            return self
        if info.status != "failed":
            await self.runtime.client.resume_workflow_async(self.id)
            return self
        steps = await self.runtime.client.list_workflow_steps_async(self.id, load_output=False)
        top = max((s["function_id"] for s in steps), default=-1)
        new_id = new_run_id(info.target)
        await self.runtime.store.copy(self.id, new_id)  # before the fork exists, so it starts with them
        with SetWorkflowID(new_id):
            await self.runtime.client.fork_workflow_async(self.id, top + 1)
        return DurableRun(self.runtime, new_id, target=info.target)

    def edit(self, task: str, value: Any) -> DurableRun:
        """Replace a workflow task's output (a human's correction) for the next `rerun()`."""
        self.changes[task] = value
        return self

    async def rerun(self, **inputs: Any) -> DurableRun:
        """A new durable run that keeps every output still valid: only the descendants of the edited
        tasks (and of changed `inputs`) run again."""
        run = await self.runtime.rerun(self.id, self.changes, **inputs)
        self.changes = {}
        return run


class DurableSession:
    """A conversation with a supervisor (or agent) whose every turn is a durable run: turn n of
    session S is run `S/n`, started with the conversation so far. Reopening a session by id
    picks the conversation up from its last finished turn, in any process."""

    def __init__(self, runtime: Runtime, target: str, session_id: str) -> None:
        self.runtime, self.target, self.id = runtime, target, session_id
        self.messages: list[Message] = []
        self.turns = 0

    async def load(self) -> DurableSession:
        turns = await self.history()
        self.turns = max((turn_number(t.id) for t in turns), default=0)  # pruned turns leave gaps
        done = [t for t in turns if t.status == "done" and t.outcome is not None]
        if done:
            last = registry.get(self.target).decode(done[-1].outcome or {})
            if isinstance(last, RunResult):
                self.messages = close_open_calls(last.messages)
        return self

    async def history(self) -> list[RunInfo]:
        """Every turn so far, in order, with its outcome (`RunInfo.task` is what the user said)."""
        found = await self.runtime.client.list_workflows_async(workflow_id_prefix=f"{self.id}/", load_input=True,
                                                               load_output=True)
        turns = sorted((int(n), wf) for wf in found if (n := wf.workflow_id.rsplit("/", 1)[1]).isdigit())
        return [info_of(wf, await self.runtime._waiting(wf.workflow_id, wf.status)) for _, wf in turns]

    async def send(self, text: str) -> RunResult[Any]:
        """One user turn, run durably; the `RunResult` (its `output` is the reply)."""
        return self.keep(await (await self.begin(text)).result())

    async def begin(self, text: str) -> DurableRun:
        """Start one user turn; `keep` its result when it is done."""
        self.turns += 1
        return await self.runtime.start(self.target, text, id=f"{self.id}/{self.turns}", history=self.messages)

    def keep(self, result: Any) -> Any:
        self.messages = close_open_calls(result.messages)
        return result

    def last_turn(self) -> DurableRun | None:
        return None if not self.turns else self.runtime.get(f"{self.id}/{self.turns}")
