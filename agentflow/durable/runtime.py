"""The durable runtime: DBOS launched on SQLite or PostgreSQL, and the one workflow every run is.

Every durable run is the DBOS workflow `agentflow.run(target, payload)`: it finds the target by
its registered name and runs it under a `DurableRunner`. DBOS recovers pending runs when a
process launches; arguments, step outputs and results are JSON (DBOS's portable format).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbos import (
    DBOS,
    DBOSClient,
    DBOSConfig,
    DBOSPortableJSONSerializer,
    EnqueueOptions,
    SetWorkflowID,
    WorkflowSerializationFormat,
)

from ..core.errors import ConfigError
from ..core.messages import Message
from ..runtime.runner import using
from ..runtime.scope import listening
from ..teams.planning import Plan
from . import codec
from .eventlog import EventLog
from .journal import WAITING, DurableRunner, read_journal
from .registry import Target, registry
from .runs import FINISHED, DurableRun, DurableSession, RunInfo, info_of, new_run_id
from .store import NormalSync, open_store

DEFAULT_URL = "sqlite:///.agentflow/agentflow.db"
APP_VERSION = "agentflow-1"  # pinned: DBOS's default (a hash of workflow code) would strand pending runs
QUEUE = "agentflow"
RECENT = 1000  # runs that succeeded here kept in memory (results and all) for info()
WORKFLOW = "agentflow.run"

_runtime: Runtime | None = None


@DBOS.workflow(name=WORKFLOW, serialization_type=WorkflowSerializationFormat.PORTABLE)
async def _durable_run(target: str, payload: dict[str, Any]) -> dict[str, Any]:
    rt = current()
    run_id = DBOS.workflow_id or ""
    if (task := asyncio.current_task()) is not None:  # DBOS's task: done once the outcome is recorded
        rt.track(run_id, task)
    rows = await rt.store.load(run_id)
    # A run with no steps yet has nothing in DBOS's journal either: a wait journals its question first.
    journal, top = read_journal(rows, await rt.client.list_workflow_steps_async(run_id) if rows else [])
    for _ in range(top + 1):  # DBOS's own operations (events, replies) go after every recorded one
        DBOS.reserve_step()
    previous = None
    if (source := payload.get("rerun_of")) is not None:
        previous = await rt.client.retrieve_workflow_async(source)
        previous = await _result_or_partial(previous)
    writer = await rt.event_log.writer(run_id) if rt.record_events else None
    runner = DurableRunner(run_id, journal, rt.store, None if writer is None else writer.emit)
    if rows:  # resumed: until the replay reaches them, it still waits on what it waited on before
        runner.waiting = {w["name"]: w for w in await rt.client.get_event_async(run_id, WAITING, 0) or []}
    rt.runners[run_id] = runner
    try:
        with using(runner), nullcontext() if writer is None else listening(writer.emit, deltas=True):
            return await registry.get(target).execute(payload, previous)
    finally:
        if rt.runners.get(run_id) is runner:
            del rt.runners[run_id]
        if writer is not None:
            await writer.close()


async def _result_or_partial(handle: Any) -> dict[str, Any]:
    try:
        return await handle.get_result()
    except Exception as e:  # a failed run's partial result rides on its error
        data = getattr(e, "data", None)
        if isinstance(data, dict):
            return data  # type: ignore[return-value]
        raise ConfigError(f"run {handle.get_workflow_id()} left no result to re-run from: {e}") from None


_DBOS_STATUS = {"queued": ["ENQUEUED", "DELAYED"], "running": ["PENDING"], "waiting": ["PENDING", "ENQUEUED"],
                "done": ["SUCCESS"], "failed": ["ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"], "cancelled": ["CANCELLED"]}


class _FailedRunLine(logging.Filter):
    """A run that fails is an outcome the runtime records (`RunInfo.error`, the partial result), not a
    crash: DBOS's traceback of it becomes one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Exception encountered in asynchronous workflow"):
            error = record.exc_info[1]
            what = "was cancelled" if "Cancelled" in type(error).__name__ else "failed"
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = \
                f"agentflow: a durable run {what}: %s", (str(error).split("\n", 1)[0],), None, logging.WARNING, \
                "WARNING"
        return True


def current() -> Runtime:
    if _runtime is None:
        raise ConfigError("the durable runtime is not launched: call agentflow.durable.launch() first")
    return _runtime


def launch(url: str = DEFAULT_URL, *, targets: Sequence[Target] = (), app_version: str = APP_VERSION,
           executor_id: str | None = None, worker: bool = False, concurrency: int | None = None,
           worker_concurrency: int | None = None, retention_days: float | None = None,
           recover_every: float = 1.0, record_events: bool = False, log_level: str = "WARNING") -> Runtime:
    """Start the durable runtime (once per process) and recover this process's pending runs.

    `url`: `sqlite:///path` (the default, a file) or `postgresql://...`. `targets` are registered
    first (by their names); every target a pending run needs must be registered before launch.
    `worker=True` pulls runs submitted to the queue (at most `worker_concurrency` here and
    `concurrency` across all workers). On PostgreSQL every launched process takes over the
    pending runs of processes that died (checked every `recover_every` seconds; see workers.py).
    `retention_days` deletes finished runs older than that, now and every hour. `record_events`
    keeps every run's events (reply text as it is generated included) in the database, for
    `DurableRun.events()` and `agentflow serve`."""
    global _runtime
    if _runtime is not None:
        raise ConfigError("the durable runtime is already launched in this process; use durable.current()")
    for t in targets:
        registry.add(t)
    url = _prepare(url)
    postgres = url.startswith("postgres")
    # On PostgreSQL every process gets its own executor id and liveness lock, so one process never recovers
    # another's live runs, and the dead ones' runs are taken over (see workers.py).
    executor = executor_id or (f"{socket.gethostname()}-{os.getpid()}" if postgres else "local")
    client = DBOSClient(system_database_url=url, serializer=DBOSPortableJSONSerializer())
    _check_targets(client, executor, app_version)
    liveness = None
    if postgres:
        from .workers import Liveness
        liveness = Liveness(url, executor)  # held before DBOS recovers anything in our name
    config: DBOSConfig = {"name": "agentflow", "system_database_url": url, "application_version": app_version,
                          "executor_id": executor, "serializer": DBOSPortableJSONSerializer(),
                          "log_level": log_level, "run_admin_server": False}  # type: ignore[typeddict-unknown-key]
    if not postgres:  # DBOS's own connections commit like the step table's (see store.py)
        config["db_engine_kwargs"] = {"connect_args": {"factory": NormalSync}}
    DBOS(config=config)
    DBOS.launch()
    if not any(isinstance(f, _FailedRunLine) for f in DBOS.logger.filters):
        DBOS.logger.addFilter(_FailedRunLine())
    if worker:
        def register() -> None:
            DBOS.register_queue(QUEUE, worker_concurrency=worker_concurrency, global_concurrency=concurrency,
                                polling_interval_sec=0.2)

        try:  # DBOS refuses its sync register_queue() on a thread running an event loop (the CLI's worker)
            asyncio.get_running_loop()
        except RuntimeError:
            register()
        else:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(register).result()
    _runtime = Runtime(url, client, executor, app_version, retention_days, liveness, recover_every, launched=True,
                       record_events=record_events)
    _runtime.prune_now()
    _runtime.start_background()
    return _runtime


def connect(url: str = DEFAULT_URL, *, app_version: str = APP_VERSION) -> Runtime:
    """The runs in a database, without running anything here: inspect them, answer their questions,
    cancel or resume them, submit runs for workers. (The `agentflow runs` CLI works this way.)"""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ConfigError(f"there are no runs at {url}: the file does not exist (durable.launch() creates it). "
                          "Fix: pass the database your application launches with (--db or $AGENTFLOW_DB)")
    url = _prepare(url)
    client = DBOSClient(system_database_url=url, serializer=DBOSPortableJSONSerializer())
    return Runtime(url, client, "client", app_version, None, None, 0.0, launched=False)


def _prepare(url: str) -> str:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as db:  # write-ahead log: cheaper commits, readers beside a writer
            db.execute("PRAGMA journal_mode=WAL")
    elif url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    elif not url.startswith("postgresql"):
        raise ConfigError(f"durable runs need a sqlite:///path or postgresql://... URL, not {url!r}")
    return url


def _check_targets(client: DBOSClient, executor: str, app_version: str) -> None:
    """Refuse to launch if a pending run of ours needs a target this process has not registered."""
    try:
        pending = client.list_workflows(status=["PENDING"], name=WORKFLOW, executor_id=executor,
                                        app_version=app_version, load_output=False)
    except Exception:  # a database DBOS has not created yet: nothing is pending
        return
    for wf in pending:
        target = (wf.input or {}).get("args", [None])[0] if isinstance(wf.input, dict) else None
        if isinstance(target, str) and target not in registry.entries:
            raise ConfigError(f"run {wf.workflow_id} is pending and needs the target {target!r}, which this process "
                              f"has not registered. Fix: durable.register(<it>, name={target!r}) (or pass it in "
                              "targets=) before launch()")


class Runtime:
    """The launched runtime: start runs, find them, and keep the database tidy."""

    def __init__(self, url: str, client: DBOSClient, executor: str, app_version: str, retention_days: float | None,
                 liveness: Any, recover_every: float, *, launched: bool, record_events: bool = False) -> None:
        self.url, self.client, self.executor_id, self.app_version = url, client, executor, app_version
        self.launched, self.record_events = launched, record_events
        self.tasks: dict[str, asyncio.Future[Any]] = {}  # the runs executing in this process, by id
        self.runners: dict[str, DurableRunner] = {}  # and their step runners (their open waits, in memory)
        self.recent: OrderedDict[str, RunInfo] = OrderedDict()  # runs that succeeded here lately
        self.retention_days, self.liveness, self.recover_every = retention_days, liveness, recover_every
        self.store = open_store(url)
        self.event_log = EventLog(self.store)
        self._stop = False

    # -- starting runs ----------------------------------------------------------------------

    async def start(self, target: Target | str, task: str | None = None, *, id: str | None = None,
                    history: Sequence[Message] | None = None, plan: Plan | None = None,
                    **inputs: Any) -> DurableRun:
        """Start a durable run in this process and return its handle at once."""
        self._need_launch("start")
        entry = registry.find(target)
        payload = entry.payload(task, inputs, list(history or ()), plan)
        return await self._begin(entry.name, payload, id)

    async def run(self, target: Target | str, task: str | None = None, **kwargs: Any) -> Any:
        """Start a durable run and wait for its result (a `RunResult` or a `WorkflowResult`)."""
        return await (await self.start(target, task, **kwargs)).result()

    async def submit(self, target: Target | str, task: str | None = None, *, id: str | None = None,
                     **inputs: Any) -> DurableRun:
        """Put a run on the queue for any worker (`launch(worker=True)`) to pull."""
        if isinstance(target, str) and target not in registry.entries:  # a producer without the definitions
            name, payload = target, ({"task": task, "history": [], "plan": None} if task is not None
                                     else {"inputs": codec.jsonable(inputs)})
        else:
            entry = registry.find(target)
            name, payload = entry.name, entry.payload(task, inputs, None, None)
        options: EnqueueOptions = {"queue_name": QUEUE, "workflow_name": WORKFLOW, "app_version": self.app_version,
                                   "workflow_id": id or new_run_id(name),
                                   "serialization_type": WorkflowSerializationFormat.PORTABLE}
        handle = await self.client.enqueue_async(options, name, payload)
        return DurableRun(self, handle.get_workflow_id(), target=name)

    async def rerun(self, source: str, changes: dict[str, Any] | None = None, *, id: str | None = None,
                    **inputs: Any) -> DurableRun:
        """A new durable run of workflow run `source` that keeps what still holds: `changes` replace
        tasks' outputs, `inputs` replace run inputs, and only what lies downstream runs again."""
        self._need_launch("rerun")
        base = await self.info(source)
        entry = registry.get(base.target)
        if entry.kind != "workflow":
            raise ConfigError(f"run {source} is an agent run: only workflow runs can be edited and re-run")
        given = entry.payload(None, {**base.inputs, **inputs}, None, None)["inputs"]
        payload = {"inputs": given, "rerun_of": source, "changes": entry.check_changes(changes or {})}
        return await self._begin(entry.name, payload, id)

    async def _begin(self, target: str, payload: dict[str, Any], id: str | None) -> DurableRun:
        with SetWorkflowID(id or new_run_id(target)):
            handle = await DBOS.start_workflow_async(_durable_run, target, payload)
        run_id, created = handle.get_workflow_id(), time.time()
        done: asyncio.Future[Any] | None = getattr(handle, "task", None)
        if isinstance(done, asyncio.Future) and run_id not in self.tasks:
            self.track(run_id, done)  # at once: a caller waiting for it now need not poll the database

            def remember(t: asyncio.Future[Any]) -> None:
                self._remember(run_id, target, payload, created, t)
            done.add_done_callback(remember)
        return DurableRun(self, run_id, handle, target)

    def _remember(self, run_id: str, target: str, payload: dict[str, Any], created: float,
                  task: asyncio.Future[Any]) -> None:
        """Keep a run that succeeded here (a final state), so `info()` of it needs no query."""
        if task.cancelled() or task.exception() is not None or not isinstance(task.result(), dict):
            return
        self.recent[run_id] = RunInfo(id=run_id, target=target, status="done", task=payload.get("task"),
                                      inputs=payload.get("inputs") or {}, created_at=created, updated_at=time.time(),
                                      executor=self.executor_id, outcome=task.result())
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)

    def track(self, run_id: str, task: asyncio.Future[Any]) -> None:
        """`task` executes run `run_id` in this process until it is done."""
        self.tasks[run_id] = task
        task.add_done_callback(lambda t: self.tasks.pop(run_id, None) if self.tasks.get(run_id) is t else None)

    def _need_launch(self, what: str) -> None:
        if not self.launched:
            raise ConfigError(f"{what}() runs here, so it needs durable.launch(); durable.connect() only inspects, "
                              "answers and submits")

    async def session(self, target: Target | str, id: str | None = None) -> DurableSession:
        """A conversation whose turns are durable runs; with the `id` of an earlier one, it continues it."""
        entry = registry.find(target)
        if entry.kind == "workflow":
            raise ConfigError(f"{entry.name!r} is a workflow: a session talks to a supervisor or an agent")
        session_id = id or new_run_id(entry.name)
        known, _ = await self.store.add_session(session_id, entry.name, time.time())
        if known != entry.name:
            raise ConfigError(f"session {session_id!r} talks to {known!r}, not {entry.name!r}: give another id")
        return await DurableSession(self, entry.name, session_id).load()

    async def reopen(self, session_id: str) -> DurableSession:
        """A session made earlier by `session()`, by its id alone (its target was recorded then)."""
        found = await self.store.session(session_id)
        if found is None:
            raise ConfigError(f"there is no session {session_id!r}: make one with runtime.session(target)")
        return await DurableSession(self, found[0], session_id).load()

    # -- finding runs -----------------------------------------------------------------------

    def get(self, run_id: str) -> DurableRun:
        return DurableRun(self, run_id)

    async def info(self, run_id: str, *, outcome: bool = False) -> RunInfo:
        """The run's summary; `outcome=True` adds its stored result (or a failed run's partial one)."""
        if (known := self.recent.get(run_id)) is not None:
            return known if outcome else known.model_copy(update={"outcome": None})
        found = await self.client.list_workflows_async(workflow_ids=[run_id], load_input=True, load_output=outcome)
        if not found:
            raise ConfigError(f"there is no run {run_id!r} in {self.url}")
        return info_of(found[0], await self._waiting(run_id, found[0].status))

    async def runs(self, *, status: str | None = None, target: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[RunInfo]:
        """The newest runs first (`status`: running, waiting, queued, done, failed or cancelled; `target`:
        a registered name), skipping the first `offset` of those."""
        if status is not None and status not in _DBOS_STATUS:
            raise ConfigError(f"there is no run status {status!r}: use one of {', '.join(_DBOS_STATUS)}")
        out: list[RunInfo] = []
        batch, at = max(limit + offset, 50), 0
        while len(out) < limit + offset:
            found = await self.client.list_workflows_async(name=WORKFLOW, status=_DBOS_STATUS.get(status or ""),
                                                           limit=batch, offset=at, sort_desc=True, load_input=True,
                                                           load_output=False)
            for wf in found:
                info = info_of(wf, await self._waiting(wf.workflow_id, wf.status))
                if (status is None or info.status == status) and (target is None or info.target == target):
                    out.append(info)
            if len(found) < batch:
                break
            at += batch
        return out[offset:offset + limit]

    async def _waiting(self, run_id: str, status: str) -> list[dict[str, Any]]:
        if status not in ("PENDING", "ENQUEUED"):  # a run re-queued for recovery still waits on its questions
            return []
        if (runner := self.runners.get(run_id)) is not None:  # executing here: what it waits on now
            return list(runner.waiting.values())
        return await self.client.get_event_async(run_id, WAITING, timeout_seconds=0) or []

    # -- housekeeping -----------------------------------------------------------------------

    def prune_now(self, older_than_days: float | None = None) -> int:
        """Delete finished runs (done, failed, cancelled) older than `older_than_days`
        (default: the runtime's `retention_days`; nothing when neither is set). Returns how many."""
        days = self.retention_days if older_than_days is None else older_than_days
        if days is None:
            return 0
        cutoff = time.time() - days * 86400
        old = self.client.list_workflows(status=list(FINISHED), end_time=_iso(cutoff), name=WORKFLOW,
                                         load_input=False, load_output=False)
        ids = [wf.workflow_id for wf in old if (wf.updated_at or wf.created_at or 0) / 1000 < cutoff]
        if ids:
            self.client.delete_workflows(ids, delete_children=True)
            self.store.delete(ids)
            for i in ids:
                self.recent.pop(i, None)
        return len(ids)

    def start_background(self) -> None:
        import threading

        def loop() -> None:
            last_prune = last_recovery = time.monotonic()
            while not self._stop:
                time.sleep(min(self.recover_every, 1.0))  # short, so shutdown is not kept waiting
                if self._stop:
                    return
                if self.liveness is not None and time.monotonic() - last_recovery >= self.recover_every:
                    last_recovery = time.monotonic()
                    try:
                        self.liveness.recover_dead(self.client, QUEUE, WORKFLOW)
                    except Exception as e:  # a database hiccup: try again next round
                        DBOS.logger.warning(f"agentflow: recovering dead workers failed: {e}")
                if self.retention_days is not None and time.monotonic() - last_prune > 3600:
                    last_prune = time.monotonic()
                    self.prune_now()

        if self.liveness is None and self.retention_days is None:
            return
        threading.Thread(target=loop, name="agentflow-durable", daemon=True).start()

    def shutdown(self) -> None:
        """Stop DBOS in this process (pending runs stay pending, for the next launch)."""
        global _runtime
        self._stop = True
        for task in self.tasks.values():  # as if the process died: they stay pending, for the next launch
            task.cancel()
        if self.launched:
            DBOS.destroy(destroy_registry=False)
            try:  # DBOS shut down the executor it had made this loop's default
                asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
            except RuntimeError:  # no loop running here
                pass
        self.client.destroy()
        self.store.close()
        if self.liveness is not None:
            self.liveness.close()
        if _runtime is self:
            _runtime = None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()

