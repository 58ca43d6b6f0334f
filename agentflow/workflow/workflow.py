"""`Workflow`: a compiled, checked graph of tasks, and its runs.

Compiling happens in the constructor, so every binding or graph error shows before anything
runs. A workflow is itself a unit: it can be a task of another workflow, or the worker of
`each()`. `Workflow[State](a, b, c)` is the typed-state style of the workflow-patterns lesson:
steps that take and return the state, run in order, ending early when the state says
`should_continue=False`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from ..agent.loop import EventStream, run_sync
from ..core.errors import ConfigError
from ..core.events import Emit, RunFinished, RunStarted
from ..core.limits import Limits
from ..core.messages import Usage
from ..models import Model, ModelSettings, get_model
from ..runtime.runner import StepRunner
from ..runtime.scope import open_scope
from . import export
from .engine import RunState, TaskFailure, run_graph, sink_output
from .graph import Graph, Names, compile_graph, type_name
from .nodes import Composable, Param, Seq, Unit, as_node, kinds
from .result import Status, WorkflowError, WorkflowResult

T = TypeVar("T")


class Workflow(Unit[T]):
    """Tasks arranged with `>>` and `|` (or given in order), compiled and checked.

    `model` serves every prompt task that names none; `concurrency` bounds the tasks running at
    once; `retries` (with `retry_delay` seconds, doubling) re-runs a failed task; `limits` bound
    the whole run; `inputs` declares the run inputs (then any other unbound parameter is an
    error at once); `runner` is the step runner (durable runs replace it); `settings` are the
    prompt tasks' default model settings (e.g. `max_tokens`), under each task's own."""

    kind = "workflow"

    def __init__(self, *steps: Composable, name: str = "workflow", model: str | Model | None = None,
                 concurrency: int = 8, retries: int = 0, retry_delay: float = 1.0, limits: Limits | None = None,
                 inputs: Sequence[str] | None = None, runner: StepRunner | None = None,
                 settings: ModelSettings | None = None) -> None:
        if not steps:
            raise ConfigError("a workflow needs at least one task")
        if concurrency < 1 or retries < 0:
            raise ConfigError("concurrency must be at least 1 and retries at least 0")
        node = as_node(steps[0]) if len(steps) == 1 else Seq(tuple(as_node(s) for s in steps))
        self.graph: Graph = compile_graph(node, Names(), declared=inputs)
        sinks = self.graph.sinks
        output = self.graph.nodes[sinks[0]].output_type if len(sinks) == 1 else dict[str, Any]
        super().__init__(name, tuple(self.graph.inputs.values()), output)
        self.model = get_model(model) if isinstance(model, str) else model
        self.concurrency, self.retries, self.retry_delay = concurrency, retries, retry_delay
        self.limits, self.runner, self.settings = limits or Limits(), runner, settings

    @property
    def inputs(self) -> dict[str, Param]:
        """The run inputs, with their types and defaults."""
        return dict(self.graph.inputs)

    def rounds(self) -> list[list[str]]:
        """The tasks in topological rounds (each round's tasks can run at the same time)."""
        return self.graph.rounds()

    def to_mermaid(self) -> str:
        return export.mermaid(self.graph)

    def to_dot(self) -> str:
        return export.dot(self.graph, self.name)

    # -- running --------------------------------------------------------------------------------

    async def run(self, *state: Any, **inputs: Any) -> WorkflowResult[T]:
        """Run to the end. A failing task raises `WorkflowError` (its `.result` keeps what finished).
        With exactly one run input (the typed-state style), it may be given positionally."""
        return await self._run(self._inputs(state, inputs), None, {})

    def run_sync(self, *state: Any, **inputs: Any) -> WorkflowResult[T]:
        return run_sync(lambda: self.run(*state, **inputs), "workflow.run")

    def stream(self, *state: Any, **inputs: Any) -> EventStream[WorkflowResult[T]]:
        """Events as tasks start and end (and every model and tool step inside them); `.result` at the end."""
        given = self._inputs(state, inputs)
        return EventStream(lambda emit: self._run(given, emit, {}))

    async def rerun(self, previous: WorkflowResult[Any], changes: Mapping[str, Any] | None = None,
                    **inputs: Any) -> WorkflowResult[T]:
        """Run again, keeping what still holds: `changes` replace tasks' outputs (a human's edit),
        `inputs` replace run inputs; only the tasks downstream of a change run again."""
        import networkx as nx

        changes = dict(changes or {})
        if unknown := [n for n in changes if n not in self.graph.nodes]:
            raise ConfigError(f"rerun: {unknown[0]!r} is not a task of workflow {self.name!r} "
                              f"(tasks: {', '.join(self.graph.nodes)})")
        for name, value in changes.items():
            expected = self.graph.nodes[name].output_type
            try:
                changes[name] = TypeAdapter(expected).validate_python(value)
            except ValidationError as e:
                raise ConfigError(f"rerun: the new output of {name!r} is not a valid {type_name(expected)}: "
                                  f"{e.errors()[0]['msg']} at {e.errors()[0]['loc']}") from None
            except Exception:  # a type pydantic cannot check: taken as given
                pass
        given = self._inputs((), {**previous.inputs, **inputs})
        dirty = set(changes)
        for name, value in given.items():
            if name not in previous.inputs or previous.inputs[name] != value:
                dirty.update(self.graph.needs.get(name, []))
        stale = set().union(*(nx.descendants(self.graph.dag, n) for n in dirty)) | (dirty - set(changes))
        reuse: dict[str, tuple[Any, Status]] = {n: (v, "edited") for n, v in changes.items()}
        reuse.update({n: (previous.outputs[n], "reused") for n in self.graph.nodes
                      if n not in stale and n not in changes and n in previous.outputs})
        return await self._run(given, None, reuse, previous.outputs)

    def _inputs(self, state: tuple[Any, ...], given: dict[str, Any]) -> dict[str, Any]:
        spec = self.graph.inputs
        if state:
            if len(state) > 1 or len(spec) != 1 or given:
                raise ConfigError(f"workflow {self.name!r}: give its inputs by name ({', '.join(spec) or 'none'}); "
                                  "only a workflow with exactly one input takes it positionally")
            given = {next(iter(spec)): list(state)[0]}
        if unknown := [n for n in given if n not in spec]:
            raise ConfigError(f"workflow {self.name!r} has no input {unknown[0]!r} (inputs: "
                              f"{', '.join(spec) or 'none'})")
        if missing := [n for n, p in spec.items() if p.required and n not in given]:
            name = missing[0]
            users = ", ".join(self.graph.needs[name])
            raise ConfigError(f"workflow {self.name!r} needs the input {name!r} (for {users}): no task before "
                              f"them is called {name!r}. Fix: pass {name}=... to run(), or name a task that runs "
                              "before them after it")
        checked: dict[str, Any] = {}
        for name, value in given.items():
            annotation = spec[name].annotation
            try:
                checked[name] = value if annotation is Any else TypeAdapter(annotation).validate_python(value)
            except ValidationError as e:
                raise ConfigError(f"workflow {self.name!r}: input {name!r} is not a valid {annotation!r}: "
                                  f"{e.errors()[0]['msg']}") from None
            except Exception:  # a type pydantic cannot check: taken as given
                checked[name] = value
        return checked

    async def _run(self, inputs: dict[str, Any], emit: Emit | None, reuse: Mapping[str, tuple[Any, Status]],
                   previous: Mapping[str, Any] | None = None) -> WorkflowResult[T]:
        scope, _ = open_scope(self.name, self.limits, budget=None, runner=self.runner, path=None, emit=emit)
        st = RunState(scope, self.model, self.settings, self.retries, self.retry_delay,
                      asyncio.Semaphore(self.concurrency), reuse)
        st.outputs.update(previous or {})
        scope.publish(RunStarted(agent=scope.path, id=scope.key, task=f"workflow {self.name}"))
        started = scope.runner.now()
        error: TaskFailure | None = None
        values: dict[str, Any] = {}
        try:
            values = await run_graph(st, self.graph, inputs, top=True)
        except TaskFailure as failure:
            error = failure
        output = sink_output(self.graph, values)
        if st.stopped_by in values and not any(n in values for n in self.graph.sinks):
            output = values[st.stopped_by]
        usage_by_task: dict[str, Usage] = {}
        for r in st.records:
            usage_by_task[r.task] = usage_by_task.get(r.task, Usage()) + r.usage
        result = WorkflowResult[T](self.name, output if error is None else None, st.outputs, inputs,  # type: ignore
                                   scope.budget.usage, usage_by_task, st.records, st.attempts,
                                   scope.runner.now() - started, st.stopped_by,
                                   None if error is None else error.record.error)
        scope.publish(RunFinished(agent=scope.path, id=scope.key, stop_reason="finish" if error is None else "error",
                                  detail=result.error or "", usage=result.usage))
        if error is not None:
            raise WorkflowError(failure_message(self.name, error, st), result, error.record.task)
        return result

    async def _await(self) -> T:
        return (await self.run()).output


def failure_message(workflow: str, failure: TaskFailure, st: RunState) -> str:
    r = failure.record
    done = sum(1 for x in st.records if x.status in ("done", "reused", "edited"))
    if r.unit == "workflow":
        head = f"workflow {workflow!r} stopped before {r.task!r}: {r.error}"
    else:
        tries = f" after {r.tries} tries" if r.tries > 1 else ""
        head = f"workflow {workflow!r}: task {r.id!r} failed{tries}: {r.error}"
    inputs = ", ".join(f"{k}={v}" for k, v in r.inputs.items()) or "none"
    return f"{head}\n  its inputs: {inputs}\n  {done} task(s) finished; their outputs are in `.result.outputs`"


kinds.workflow = Workflow
