"""`Supervisor`: a conversational agent that routes work to task agents it sees as tools.

Three ways to drive the work: `route` (delegate as the conversation needs, answer the rest
itself), `plan` (a typed plan first, then execution with re-planning; planning.py) and
`worklist` (a prioritised, growing list of tasks run by a scheduler; worklist.py). Every mode
runs in one scope, so budgets bound the whole tree, usage rolls up and sub-agent events
stream through `stream()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel

from ..agent.delegation import AgentTool
from ..agent.loop import Agent, EventStream, run_sync
from ..core.errors import ConfigError, partial_of
from ..core.events import Emit, RunStarted
from ..core.limits import Budget, Limits
from ..core.messages import Message, Usage, close_open_calls
from ..core.result import RunResult
from ..core.tool import Tool
from ..models import Model, ModelSettings
from ..runtime.runner import StepRunner
from ..runtime.scope import Scope, conclude, entered, open_scope
from .spawn import NEW, NEW_AGENT, AgentFactory

if TYPE_CHECKING:
    from .planning import Plan

T = TypeVar("T")
Mode = Literal["route", "plan", "worklist"]
Replan = Literal["always", "on_failure", "never"]
PlanHook = Callable[["Plan"], "Plan | None | Awaitable[Plan | None]"]
OnPlan = PlanHook | Literal["human"]

ROUTE = (
    "You coordinate task agents: each tool named after an agent hands it one task. An agent sees only what you "
    "give it, never this conversation: write each task so it stands alone, with the names, numbers and facts it "
    "needs from the user or from earlier results (longer material may go in `context`). Give independent tasks "
    "in the same reply so they run at the same time. Give only the tasks the request asks for, and answer "
    "only when every part of it is answered, from their results. When no agent is needed, answer the user "
    "yourself."
)
ROUTE_SPAWN = "When no agent fits a task, use new_agent: write its instructions and pick its tools from the library."


class Supervisor(Generic[T]):
    """Routes work to `agents` (each offered as a tool) in one of three modes; see the module doc.

    `library` and `schemas` let it make task agents on the fly (tools it may give them, outputs
    they may return). `limits` bound the whole tree; `share` caps each delegation at a fraction
    of what is left. `concurrency` bounds the task agents running at once (plan and worklist),
    `max_tasks` the worklist's length; `replan` says when plan
    mode reviews its plan; `on_plan` sees (and may replace) every plan before it runs;
    `on_plan="human"` makes the run wait for a person to accept, edit or refuse it (durable runs)."""

    @overload
    def __init__(self: Supervisor[str], agents: Sequence[Agent[Any]] = ..., *, model: str | Model | None = ...,
                 mode: Mode = ..., instructions: str = ..., name: str = ..., output: None = ...,
                 library: Sequence[Tool[Any] | Callable[..., Any]] = ..., schemas: Mapping[str, type[Any]] = ...,
                 limits: Limits | None = ..., max_steps: int | None = ..., share: float | None = ...,
                 concurrency: int = ..., max_tasks: int = ..., replan: Replan = ..., on_plan: OnPlan | None = ...,
                 settings: ModelSettings | None = ...) -> None: ...
    @overload
    def __init__(self, agents: Sequence[Agent[Any]] = ..., *, model: str | Model | None = ...,
                 mode: Mode = ..., instructions: str = ..., name: str = ..., output: type[T],
                 library: Sequence[Tool[Any] | Callable[..., Any]] = ..., schemas: Mapping[str, type[Any]] = ...,
                 limits: Limits | None = ..., max_steps: int | None = ..., share: float | None = ...,
                 concurrency: int = ..., max_tasks: int = ..., replan: Replan = ..., on_plan: OnPlan | None = ...,
                 settings: ModelSettings | None = ...) -> None: ...
    def __init__(self, agents: Sequence[Agent[Any]] = (), *, model: str | Model | None = None,
                 mode: Mode = "route", instructions: str = "", name: str = "supervisor",
                 output: type[Any] | None = None, library: Sequence[Tool[Any] | Callable[..., Any]] = (),
                 schemas: Mapping[str, type[Any]] | None = None, limits: Limits | None = None,
                 max_steps: int | None = 30, share: float | None = None, concurrency: int = 4,
                 max_tasks: int = 50, replan: Replan = "always", on_plan: OnPlan | None = None,
                 settings: ModelSettings | None = None) -> None:
        if mode not in ("route", "plan", "worklist"):
            raise ConfigError(f"mode={mode!r} is not known; use 'route', 'plan' or 'worklist'")
        if replan not in ("always", "on_failure", "never"):
            raise ConfigError(f"replan={replan!r} is not known; use 'always', 'on_failure' or 'never'")
        if concurrency < 1 or max_tasks < 1:
            raise ConfigError("concurrency and max_tasks must be at least 1")
        self.name, self.mode, self.instructions = name, mode, instructions
        self.agents = {a.name: a for a in agents}
        if len(self.agents) != len(agents):
            raise ConfigError(f"supervisor {name!r}: two agents share a name; names must be unique "
                              f"({', '.join(a.name for a in agents)})")
        self.tools = {t.name: t for t in (AgentTool(a, share=share) for a in agents)}
        if NEW_AGENT in self.tools:
            raise ConfigError(f"an agent may not be called {NEW_AGENT!r}: that name makes agents on the fly")
        self.factory = AgentFactory(library, schemas or {}, model) if library or schemas else None
        self.model, self.output, self.settings = model, output, settings
        self.limits, self.max_steps, self.share = limits or Limits(), max_steps, share
        self.concurrency, self.max_tasks, self.replan, self.on_plan = concurrency, max_tasks, replan, on_plan
        tools: list[Tool[Any]] = list(self.tools.values())
        if self.factory is not None:
            tools.append(self.factory.tool(share))
        self.router: Agent[T] = Agent(  # type: ignore[assignment]
            name, self.prompt(ROUTE, ROUTE_SPAWN), tools=tools, model=model, output=output, max_steps=max_steps,
            settings=settings, ends_with="text" if output in (None, str) else "finish")

    def prompt(self, how: str, spawn: str) -> str:
        """The system message: the user's instructions, how this mode works, and how to make agents."""
        parts = [self.instructions, how]
        if self.factory is not None:
            parts += [spawn, self.factory.describe()]
        return "\n\n".join(p for p in parts if p)

    def agent_names(self) -> Any:
        """The names a plan step or task may give as its agent (a Literal, for the schema)."""
        return Literal[(*self.agents, NEW) if self.factory else tuple(self.agents)]  # type: ignore[valid-type]

    async def run_task(self, scope: Scope, key: str, agent: str, spec: BaseModel | None, task: str,
                       context: Any) -> Any:
        """One plan step or worklist task: delegated to `agent`, or to an agent made from `spec`."""
        tool = AgentTool(self.factory.build(spec), share=self.share) if spec is not None and self.factory else \
            self.tools[agent]
        with entered(scope.within(key)):
            return await tool.delegate(task, context)

    def roster(self) -> str:
        return "\n".join(f"- {a.name}: {a.description}" for a in self.agents.values())

    # -- running --------------------------------------------------------------------------------

    async def run(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
                  path: str | None = None, history: Sequence[Message] | None = None,
                  plan: Plan | None = None) -> RunResult[T]:
        """Do the task (plan mode: with `plan` given, skip planning and run it)."""
        return await self._execute(task, budget, runner, path, history, plan, None, False)

    def run_sync(self, task: str, **kwargs: Any) -> RunResult[T]:
        return run_sync(lambda: self.run(task, **kwargs), "supervisor.run")

    def stream(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
               path: str | None = None, history: Sequence[Message] | None = None,
               plan: Plan | None = None, deltas: bool = False) -> EventStream[RunResult[T]]:
        """Every event of the run and its sub-agents, as they happen; `.result` at the end.
        `deltas=True` adds the supervisor's own reply text as it is generated (`TextChunk`)."""
        return EventStream(lambda emit: self._execute(task, budget, runner, path, history, plan, emit, deltas))

    async def plan(self, task: str, *, history: Sequence[Message] | None = None) -> Plan:
        """Only the planning call of plan mode: a plan to inspect, edit and pass to `run(plan=...)`."""
        from .planning import PlanMode

        scope, _ = open_scope(self.name, self.limits, budget=None, runner=None, path=None, emit=None)
        return await PlanMode(self, scope, task, history).make_plan()

    def session(self) -> Session[T]:
        """A multi-turn conversation that keeps its memory across `send`s."""
        return Session(self)

    async def _execute(self, task: str, budget: Budget | None, runner: StepRunner | None, path: str | None,
                       history: Sequence[Message] | None, plan: Plan | None, emit: Emit | None,
                       deltas: bool) -> RunResult[T]:
        scope, parent = open_scope(self.name, self.limits, budget=budget, runner=runner, path=path, emit=emit,
                                   deltas=deltas)
        scope.publish(RunStarted(agent=scope.path, id=scope.key, task=task))
        try:
            result = await self._mode_run(scope, task, history, plan)
        except Exception as exc:
            if (partial := partial_of(exc)) is not None:
                conclude(scope, parent, partial)
            raise
        conclude(scope, parent, result)
        return result

    async def _mode_run(self, scope: Scope, task: str, history: Sequence[Message] | None,
                        plan: Plan | None) -> RunResult[T]:
        if plan is not None and self.mode != "plan":
            raise ConfigError(f"a plan was given but this supervisor's mode is {self.mode!r}; use mode='plan'")
        if self.mode == "route":
            return await self.router.run_in(scope, task, history)
        if self.mode == "plan":
            from .planning import PlanMode

            return await PlanMode[T](self, scope, task, history).run(plan)
        from .worklist import WorklistMode

        return await WorklistMode[T](self, scope, task, history).run()


class Session(Generic[T]):
    """A conversation with a supervisor. Each `send` sees every earlier turn; task agents still
    see only the tasks they are given. `usage` is the total of all turns."""

    def __init__(self, supervisor: Supervisor[T]) -> None:
        self.supervisor = supervisor
        self.messages: list[Message] = []
        self.usage = Usage()
        self.results: list[RunResult[T]] = []

    async def send(self, text: str) -> RunResult[T]:
        """One user turn; the result's `output` is the reply."""
        return await self._send(text, None, False)

    def send_sync(self, text: str) -> RunResult[T]:
        return run_sync(lambda: self.send(text), "session.send")

    def stream(self, text: str, *, deltas: bool = False) -> EventStream[RunResult[T]]:
        """One user turn, with its events as they happen (`deltas=True`: the reply text as it is made)."""
        return EventStream(lambda emit: self._send(text, emit, deltas))

    async def _send(self, text: str, emit: Emit | None, deltas: bool) -> RunResult[T]:
        try:
            result = await self.supervisor._execute(text, None, None, None, self.messages, None, emit, deltas)
        except (Exception, asyncio.CancelledError) as exc:  # keep what a failed or cancelled turn paid for
            if isinstance(partial := partial_of(exc), RunResult):
                self._keep(partial)
            raise
        self._keep(result)
        return result

    def _keep(self, result: RunResult[Any]) -> None:
        self.messages = close_open_calls(result.messages)
        self.usage = self.usage + result.usage
        self.results.append(result)
