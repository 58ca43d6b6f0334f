"""Where a run sits in the tree of agents: its path, budget, step runner and listeners.

A run publishes a `Scope` while its tools execute, so an agent run started inside a tool (an
agent offered as a tool, or a hand-written tool that awaits `agent.run`) becomes its child
with no plumbing: its usage rolls up, its events reach the parent's stream, its step names
nest under the parent's (unique and stable, so the durable runtime can replay them), and the
parent's loop guard sees its task. With tracing on (agentflow.telemetry), each run's scope also
holds its `RunTrace`, which hears the run's events; with it off, opening a run costs one check.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.binding import bound
from ..core.events import Emit, Event, RunFinished
from ..core.limits import Budget, Limits
from ..core.tool import to_observation
from .runner import StepRunner, ambient_runner

if TYPE_CHECKING:
    from ..core.result import RunResult
    from ..telemetry import RunTrace
    from .guards import DelegationGuard


@dataclass(eq=False)
class Scope:
    """`path` is what users see (`supervisor/researcher`); `key` prefixes step names and is unique
    in the run tree even when the same agent is given several tasks."""

    path: str
    key: str
    budget: Budget
    runner: StepRunner
    emit: Emit | None = None
    children: list[RunResult[Any]] = field(default_factory=list["RunResult[Any]"])
    guard: DelegationGuard | None = None
    deltas: bool = False  # publish this run's reply text as it is generated (not its children's)
    trace: RunTrace | None = None  # this run's spans, when tracing is on
    _names: dict[str, int] = field(default_factory=dict[str, int])

    def publish(self, event: Event) -> None:
        if self.emit is not None:
            self.emit(event)

    def within(self, suffix: str) -> Scope:
        """The same run's scope for one of its operations (a tool call, a task): a new key, shared state."""
        return Scope(self.path, f"{self.key}/{suffix}", self.budget, self.runner, self.emit, self.children,
                     self.guard, self.deltas, self.trace)

    def child_key(self, name: str) -> str:
        count = self._names[name] = self._names.get(name, 0) + 1
        return f"{self.key}/{name}" if count == 1 else f"{self.key}/{name}~{count}"


_current: ContextVar[Scope | None] = ContextVar("agentflow_scope", default=None)


def current_scope() -> Scope | None:
    """The scope of the run whose tool is executing here, if any."""
    return _current.get()


def entered(scope: Scope) -> AbstractContextManager[Scope]:
    return bound(_current, scope)


_listener: ContextVar[tuple[Emit, bool] | None] = ContextVar("agentflow_listener", default=None)


@contextmanager
def listening(emit: Emit, *, deltas: bool = False) -> Generator[None]:
    """Top-level runs started here (also inside a durable run started here) send their events to
    `emit` (and to any listener outside this one): how a caller hears a run it does not start
    itself, such as a durable one."""
    if (outer := _listener.get()) is not None:
        emit, deltas = _both(emit, outer[0]) or emit, deltas or outer[1]
    with bound(_listener, (emit, deltas)):
        yield


def open_scope(name: str, limits: Limits, *, budget: Budget | None, runner: StepRunner | None, path: str | None,
               emit: Emit | None, deltas: bool = False) -> tuple[Scope, Scope | None]:
    """The scope of a new run named `name`, and its parent's: inside another run's tool, the new run
    is that run's child; explicit arguments win over what it would inherit."""
    parent = current_scope()
    if parent is None:
        if emit is None and (ambient := _listener.get()) is not None:
            emit, deltas = ambient
        path = path or name
        own = Budget(limits) if budget is None else budget.child(limits)
        scope = Scope(path, path, own, runner or ambient_runner(), emit, deltas=deltas and emit is not None)
        if "opentelemetry.trace" in sys.modules:  # tracing needs OpenTelemetry loaded: off without a look further
            _traced(scope, None)
        return scope, None
    emit = _both(emit, parent.emit)
    scope = Scope(path or f"{parent.path}/{name}", parent.child_key(name), (budget or parent.budget).child(limits),
                  runner or parent.runner, emit, deltas=deltas and emit is not None)
    if parent.trace is not None:
        _traced(scope, parent)
    return scope, parent


def _traced(scope: Scope, parent: Scope | None) -> None:
    """Give a new run its trace, if tracing is on, and let it hear the run's events first."""
    from ..telemetry import trace_for

    if (trace := trace_for(scope, parent)) is not None:
        scope.trace = trace
        scope.emit = _both(trace.emit, scope.emit)


def _both(first: Emit | None, second: Emit | None) -> Emit | None:
    if first is None or second is None:
        return first or second
    return lambda event: (first(event), second(event))[-1]


def conclude(scope: Scope, parent: Scope | None, result: RunResult[Any]) -> None:
    """A run has ended: its parent keeps the result, and listeners hear of it."""
    if parent is not None:
        parent.children.append(result)
    if scope.emit is not None:
        output = None if result.output is None else to_observation(result.output)
        scope.publish(RunFinished(agent=scope.path, id=scope.key, stop_reason=result.stop_reason, detail=result.detail,
                                  usage=result.usage, output=output))
