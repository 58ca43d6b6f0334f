"""Running a compiled graph: every unit starts the moment its inputs are ready (so the wall time
follows the critical path, not whole rounds), leaf tasks share a concurrency limit, a failure
stops new starts while the running tasks finish and keep what they produced."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.binding import bound
from ..core.errors import ConfigError
from ..core.tool import to_observation
from ..models import Model, ModelSettings
from ..runtime.scope import Scope
from .control import Each, Loop, Switch
from .graph import Binding, Graph, Placed
from .nodes import MISSING, bound_inputs, current_model
from .result import Status, TaskFinished, TaskRecord, TaskStarted
from .task import Context, Task, TaskError


class TaskFailure(Exception):
    """A unit failed for good; carries its record (and ends the run)."""

    def __init__(self, record: TaskRecord) -> None:
        super().__init__(record.error)
        self.record = record


@dataclass
class RunState:
    """What every unit of one run shares."""

    scope: Scope
    model: Model | None
    settings: ModelSettings | None
    retries: int
    retry_delay: float
    slots: asyncio.Semaphore
    reuse: Mapping[str, tuple[Any, Status]] = field(default_factory=dict[str, tuple[Any, Status]])
    records: list[TaskRecord] = field(default_factory=list[TaskRecord])
    outputs: dict[str, Any] = field(default_factory=dict[str, Any])
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict[str, list[dict[str, Any]]])
    stopped_by: str | None = None

    def record(self, record: TaskRecord) -> TaskRecord:
        self.records.append(record)
        self.scope.publish(TaskFinished(agent=self.scope.path, **record.model_dump(exclude={"inputs"})))
        return record


def preview(value: Any, limit: int = 200) -> str:
    text = to_observation(value)
    return text if len(text) <= limit else text[:limit] + "..."


async def run_graph(st: RunState, graph: Graph, env: Mapping[str, Any], prefix: str = "",
                    prev: Mapping[str, Any] | None = None, top: bool = False) -> dict[str, Any]:
    """Runs `graph` with `env` as its inputs; the outputs by name (with what loops export)."""
    import networkx as nx

    values: dict[str, Any] = {}
    waiting = {n: set(graph.dag.predecessors(n)) for n in graph.nodes}
    running: dict[asyncio.Future[tuple[Any, dict[str, Any]]], str] = {}
    failure: TaskFailure | None = None

    def start_ready() -> None:
        for name in [n for n, needs in waiting.items() if not needs]:
            del waiting[name]
            placed = graph.nodes[name]
            inputs = {p: resolve(b, values, env, prev) for p, b in placed.bindings.items()}
            inputs = {k: v for k, v in inputs.items() if v is not MISSING}
            reused = st.reuse.get(name) if top else None
            job = reuse(st, placed, reused) if reused else run_unit(st, placed, inputs, prefix + name)
            running[asyncio.ensure_future(job)] = name

    try:
        start_ready()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                name = running.pop(job)
                try:
                    output, exports = job.result()
                except TaskFailure as f:
                    failure = failure or f
                    continue
                values.update(exports)
                values[name] = output
                for succ in graph.dag.successors(name):
                    waiting.get(succ, set()).discard(name)
                if getattr(output, "should_continue", True) is False:  # the typed-state style's early end
                    st.stopped_by = name
                    for later in sorted(nx.descendants(graph.dag, name), key=list(graph.nodes).index):
                        if waiting.pop(later, None) is not None:
                            st.record(TaskRecord(id=prefix + later, task=later, unit=graph.nodes[later].unit.kind,
                                                 status="skipped", detail=f"{name} set should_continue=False"))
            if failure is None and waiting:
                if hit := st.scope.budget.exceeded():
                    failure = TaskFailure(TaskRecord(id=prefix + next(iter(waiting)), task=next(iter(waiting)),
                                                     unit="workflow", status="failed", error=f"{hit[0]}: {hit[1]}"))
                else:
                    start_ready()
        if failure is not None:
            raise failure
        return values
    finally:
        for job in running:
            job.cancel()


def resolve(binding: Binding, values: Mapping[str, Any], env: Mapping[str, Any],
            prev: Mapping[str, Any] | None) -> Any:
    if binding.kind == "const":
        return binding.value
    source = {"task": values, "input": env, "prev": prev or {}}[binding.kind]
    value = source.get(binding.ref, binding.default)
    for attr in binding.path:
        value = value[attr] if isinstance(value, Mapping) else getattr(value, attr)
    return value


async def reuse(st: RunState, placed: Placed, reused: tuple[Any, Status]) -> tuple[Any, dict[str, Any]]:
    value, status = reused
    st.record(TaskRecord(id=placed.name, task=placed.name, unit=placed.unit.kind, status=status, output=value))
    exports = {n: st.outputs[n] for n in placed.exports if n in st.outputs}
    st.outputs[placed.name] = value
    return value, exports


async def run_unit(st: RunState, placed: Placed, inputs: dict[str, Any], id: str) -> tuple[Any, dict[str, Any]]:
    """One unit, with its start and end events and its record; a failure becomes `TaskFailure`."""
    unit, scope = placed.unit, st.scope
    shown = {k: preview(v) for k, v in inputs.items()}
    scope.publish(TaskStarted(agent=scope.path, id=id, task=placed.name, unit=unit.kind, inputs=shown))
    started = scope.runner.now()
    record = TaskRecord(id=id, task=placed.name, unit=unit.kind, status="done", inputs=shown)
    exports: dict[str, Any] = {}
    output: Any = None
    try:
        if isinstance(unit, Task):
            output = await run_task(st, unit, inputs, id, record)
        else:
            output, exports = await run_composite(st, placed, inputs, id, record)
    except TaskFailure:
        raise
    except Exception as e:
        record.status, record.error = "failed", f"{type(e).__name__}: {e}"
    record.seconds = scope.runner.now() - started
    if record.status != "failed":
        record.output = output
    st.record(record)
    if record.status == "failed":
        raise TaskFailure(record)
    st.outputs[placed.name] = output
    return output, exports


async def run_composite(st: RunState, placed: Placed, inputs: dict[str, Any], id: str,
                        record: TaskRecord) -> tuple[Any, dict[str, Any]]:
    """A route, fan-out, loop or sub-workflow (with its own model if it has one), on a budget of
    its own: its record's usage is what its insides spent, counted once however deep they nest."""
    unit, scope = placed.unit, st.scope
    inner = replace(st, scope=Scope(scope.path, scope.key, scope.budget.child(), scope.runner, scope.emit,
                                    trace=scope.trace),
                    model=getattr(unit, "model", None) or st.model)  # only a sub-workflow has a model
    try:
        if isinstance(unit, Switch):
            return await run_route(inner, placed, unit, inputs, id, record), {}
        if isinstance(unit, Each):
            return await run_each(inner, placed, inputs, id), {}
        if isinstance(unit, Loop):
            return await run_loop(inner, placed, unit, inputs, id, record)
        assert placed.body is not None
        return sink_output(placed.body, await run_graph(inner, placed.body, inputs, id + "/")), {}
    finally:
        record.usage = inner.scope.budget.usage
        st.stopped_by = inner.stopped_by


async def run_task(st: RunState, unit: Task[Any], inputs: dict[str, Any], id: str, record: TaskRecord) -> Any:
    """A leaf task, retried as configured; its usage is what its own budget was charged."""
    parent = st.scope
    budget = parent.budget.child()
    tries = 1 + (st.retries if unit.retries is None else unit.retries)
    args = bound_inputs(unit, inputs)
    error: Exception | None = None
    try:
        for attempt in range(tries):
            key = f"{parent.key}/{id}" + (f"~try{attempt + 1}" if attempt else "")
            scope = Scope(f"{parent.path}/{id}", key, budget, parent.runner, parent.emit, trace=parent.trace)
            record.tries = attempt + 1
            try:
                async with st.slots:
                    with bound(current_model, (st.model, st.settings)):
                        return await unit.execute(args, Context(scope, st.model, st.settings))
            except (ConfigError, TaskError) as e:
                error = e
                if isinstance(e, ConfigError) or not e.retryable:
                    break
            except Exception as e:  # a task that raises is retried, then fails the run
                error = e
            if attempt + 1 < tries and st.retry_delay:
                await asyncio.sleep(st.retry_delay * 2**attempt)
        assert error is not None
        raise error
    finally:
        record.usage = budget.usage


async def run_route(st: RunState, placed: Placed, unit: Switch, inputs: dict[str, Any], id: str,
                    record: TaskRecord) -> Any:
    key, _ = unit.choose(inputs[placed.router])
    graph = placed.branches.get(key, placed.default)
    assert graph is not None
    record.detail = f"branch {key!r}"
    return sink_output(graph, await run_graph(st, graph, inputs, id + "/"))


async def run_each(st: RunState, placed: Placed, inputs: dict[str, Any], id: str) -> list[Any]:
    assert isinstance(placed.unit, Each) and placed.worker is not None
    items = inputs.pop(placed.unit.over)
    if isinstance(items, str | bytes) or not hasattr(items, "__iter__"):
        raise TaskError(f"each({placed.unit.worker.name}) needs a list to map over, got {type(items).__name__}")
    worker = placed.worker
    jobs = [run_unit(st, worker, {**inputs, placed.item: item}, f"{id}[{i}]") for i, item in enumerate(items)]
    done = await asyncio.gather(*jobs, return_exceptions=True)  # the others finish even if one fails
    if failed := next((d for d in done if isinstance(d, BaseException)), None):
        raise failed
    return [output for output, _ in done]  # type: ignore[misc]


async def run_loop(st: RunState, placed: Placed, unit: Loop, inputs: dict[str, Any], id: str,
                   record: TaskRecord) -> tuple[Any, dict[str, Any]]:
    assert placed.body is not None
    sink = placed.body.sinks[0]
    values: dict[str, Any] = {}
    attempts = st.attempts.setdefault(placed.name, [])
    for i in range(1, unit.max_iterations + 1):
        if values:  # the typed-state style: what the body ended with is what it starts from next
            inputs = {**inputs, **{n: values[sink] for n in placed.carry}}
        values = await run_graph(st, placed.body, inputs, f"{id}/{i}/", prev=values)
        attempts.append({n: values[n] for n in placed.body.nodes if n in values})
        output = values[sink]
        if unit.until is not None and unit.until(output):
            record.detail = f"until was met after {i} iteration(s)"
            return output, values
        if getattr(output, "should_continue", True) is False:
            record.detail = f"{sink} set should_continue=False after {i} iteration(s)"
            return output, values
    record.detail = f"stopped at max_iterations={unit.max_iterations}" + (" (until was not met)" if unit.until else "")
    return values[sink], values


def sink_output(graph: Graph, values: Mapping[str, Any]) -> Any:
    sinks = [n for n in graph.sinks if n in values]
    if len(sinks) == 1:
        return values[sinks[0]]
    return {n: values[n] for n in sinks}
