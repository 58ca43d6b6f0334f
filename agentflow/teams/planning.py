"""Plan-then-execute: a typed `Plan`, run with independent steps at once, reviewed as results arrive.

The supervisor's own conversation (its "brain") holds the plan, every result it was shown and
every review, so a revision can use what earlier steps found. Each step's agent sees only the
step's task and the results of the steps it `needs`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ..agent.loop import Agent, Validator
from ..core.dag import dependency_graph
from ..core.errors import ConfigError, StopRun
from ..core.events import Event
from ..core.messages import Message
from ..core.result import ModelStep, RunResult, StopReason, ToolStep
from ..core.tool import to_observation
from ..runtime.guards import DelegationGuard, LoopDetected
from ..runtime.requests import HumanReply, HumanRequest
from ..runtime.scope import Scope
from .spawn import NEW, AgentSpec, narrowed

if TYPE_CHECKING:
    from .supervisor import Supervisor

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

PLAN = (
    "You coordinate task agents by planning. First write a plan: steps, each naming the agent that does it and "
    "the ids of the earlier steps whose results it needs. Steps that do not need each other run at the same "
    "time. An agent sees only its step's task and the results it needs, so write tasks that stand alone. If "
    "the request needs no agent, make a plan with no steps. Agents:\n"
)
PLAN_SPAWN = f'If no agent fits a step, set its agent to "{NEW}" and describe the agent to make in new_agent.'


class PlanStep(BaseModel):
    """One step: `task` for `agent`, after the steps in `needs` (whose results it receives)."""

    id: str = Field(description="A short unique id, e.g. s1")
    task: str = Field(description="What to do, complete and self-contained")
    agent: str = Field(description="The agent that does it")
    needs: list[str] = Field(default_factory=list[str], description="ids of steps whose results it needs")
    new_agent: AgentSpec | None = Field(default=None, description=f'The agent to make, when agent is "{NEW}"')


class Plan(BaseModel):
    goal: str = Field(description="What the plan achieves")
    steps: list[PlanStep]


class Review(BaseModel):
    """The supervisor's decision after results arrive."""

    decision: Literal["keep", "revise", "abandon"]
    reason: str = Field(description="Why, in one sentence")
    steps: list[PlanStep] | None = Field(default=None, description=(
        "With revise: every step to run from now on, replacing all steps not started yet"))


class PlanMade(Event):
    """A plan was made (`revision` 0) or revised; `reason` says why."""

    kind: Literal["plan"] = "plan"
    plan: Plan
    revision: int = 0
    reason: str = ""


class PlanStepChanged(Event):
    kind: Literal["plan_step"] = "plan_step"
    step: str
    by: str  # the task agent
    task: str
    status: Literal["started", "done", "failed", "cancelled"]
    output: Any = None
    error: str | None = None


def _as(kind: type[M], value: BaseModel) -> M:
    """A value of a narrowed schema as the public type."""
    return kind.model_validate(value.model_dump())


class PlanMode(Generic[T]):
    """One plan-mode run of a supervisor."""

    def __init__(self, sup: Supervisor[T], scope: Scope, task: str, history: Sequence[Message] | None) -> None:
        self.sup, self.scope, self.task = sup, scope, task
        scope.guard = scope.guard or DelegationGuard()
        self.messages = list(history or ())
        self.log: list[ModelStep | ToolStep] = []
        self.steps: dict[str, PlanStep] = {}
        self.pending: list[PlanStep] = []
        self.running: dict[asyncio.Task[Any], PlanStep] = {}
        self.done: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.revision = 0
        self.shown: set[str] = set()
        spec = sup.factory.spec if sup.factory else None
        step = narrowed(PlanStep, "PlanStep", agent=sup.agent_names(), new_agent=spec and spec | None)
        self.plan_schema = narrowed(Plan, "Plan", steps=list[step])  # type: ignore[valid-type]
        self.review_schema = narrowed(Review, "Review", steps=list[step] | None)  # type: ignore[valid-type]
        self.system = sup.prompt(PLAN + sup.roster(), PLAN_SPAWN)

    async def run(self, plan: Plan | None) -> RunResult[T]:
        try:
            if plan is None:
                plan = await self.make_plan()
            else:
                try:
                    self.check(plan, set())
                except ValueError as e:
                    raise ConfigError(f"the plan given to run() is not valid: {e}") from None
                self.messages.append(Message.user(f"{self.task}\n\nThe plan, given: {plan.model_dump_json()}"))
                plan = await self.adopt(plan, set(), "given")
            self.pending = list(plan.steps)
            await self.execute()
            output = await self.answer()
            return self.result("finish", "", output)
        except StopRun as halt:
            return self.result(halt.reason, halt.detail, None)
        finally:
            for task in self.running:
                task.cancel()

    async def make_plan(self) -> Plan:
        prompt = f"{self.task}\n\nWrite the plan now: call finish with it."
        raw = await self.brain(self.plan_schema, prompt, "plan", lambda p: self.check(_as(Plan, p), set()))
        return await self.adopt(_as(Plan, raw), set(), "")

    async def adopt(self, plan: Plan, known: set[str], reason: str) -> Plan:
        """Show the plan to `on_plan` (which may replace it), then make it the plan."""
        hook = self.sup.on_plan
        if hook == "human":
            edited = await self.human_review(plan)
        elif hook is not None and not isinstance(hook, str):
            edited = hook(plan)
            edited = await edited if inspect.isawaitable(edited) else edited
        else:
            edited = None
        if edited is not None:
            try:
                self.check(edited, known)
            except ValueError as e:
                raise ConfigError(f"the plan returned by on_plan is not valid: {e}") from None
            plan = edited
        self.steps.update((s.id, s) for s in plan.steps)
        self.scope.publish(PlanMade(agent=self.scope.path, plan=plan, revision=self.revision, reason=reason))
        self.revision += 1
        return plan

    async def human_review(self, plan: Plan) -> Plan | None:
        """`on_plan="human"`: the run waits for a person to accept, edit or refuse the plan."""
        name = f"{self.scope.key}/plan/{self.revision}/review"
        reply = await self.scope.runner.wait(name, HumanRequest(
            kind="plan", question=f"Run this plan for {self.task!r}? Accept it, edit it or refuse it.",
            agent=self.scope.path, plan=plan.model_dump(mode="json"), default=HumanReply(approved=True)))
        if reply.approved is False:
            raise StopRun("cancelled", f"the plan was refused{f': {reply.reason}' if reply.reason else ''}")
        return None if reply.plan is None else Plan.model_validate(reply.plan)

    def check(self, plan: Plan | Sequence[PlanStep], known: set[str]) -> None:
        """Raises ValueError (shown to the model) if steps name unknown agents, ids or cycles."""
        steps = plan.steps if isinstance(plan, Plan) else plan
        ids = [s.id for s in steps]
        if clash := sorted({i for i in ids if ids.count(i) > 1 or i in known}):
            raise ValueError(f"step ids must be new and unique; repeated: {', '.join(clash)}")
        for s in steps:
            if s.agent == NEW and self.sup.factory is not None:
                if s.new_agent is None:
                    raise ValueError(f'step {s.id}: agent is "{NEW}" but new_agent is missing')
            elif s.agent not in self.sup.agents:
                raise ValueError(f"step {s.id}: there is no agent {s.agent!r}; agents: {', '.join(self.sup.agents)}")
        graph = {s.id: [n for n in s.needs if n not in known] for s in steps} | {k: [] for k in known}
        try:
            dependency_graph(graph, what="step")
        except ConfigError as e:
            raise ValueError(str(e)) from None

    async def execute(self) -> None:
        while True:
            self.start_ready()
            if not self.running:
                return
            done, _ = await asyncio.wait(self.running, timeout=self.scope.budget.remaining_seconds(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise StopRun("max_time", "the wall-time limit was reached while plan steps ran")
            finished = [self.collect(t) for t in done]
            if self.should_review(finished):
                await self.review(finished)

    def start_ready(self) -> None:
        for step in list(self.pending):
            if len(self.running) >= self.sup.concurrency:
                return
            if all(n in self.done for n in step.needs):
                self.pending.remove(step)
                self.running[asyncio.ensure_future(self.run_step(step))] = step
                self.publish(step, "started")

    async def run_step(self, step: PlanStep) -> Any:
        spec = step.new_agent if step.agent == NEW else None
        context = {n: self.done[n] for n in step.needs} or None
        return await self.sup.run_task(self.scope, f"step/{step.id}", step.agent, spec, step.task, context)

    def collect(self, task: asyncio.Task[Any]) -> PlanStep:
        step = self.running.pop(task)
        error = task.exception()
        if isinstance(error, LoopDetected):
            raise StopRun("loop", str(error))
        if error is None:
            self.done[step.id] = task.result()
            self.publish(step, "done", output=to_observation(self.done[step.id]))
        else:
            self.failed[step.id] = str(error)
            self.publish(step, "failed", error=self.failed[step.id])
        return step

    def should_review(self, finished: list[PlanStep]) -> bool:
        if self.sup.replan == "never":
            return False
        failed = any(s.id in self.failed for s in finished)
        return failed or (self.sup.replan == "always" and bool(self.pending))

    async def review(self, finished: list[PlanStep]) -> None:
        lines = [self.report(s) for s in finished]
        lines.append(f"Running: {', '.join(s.id for s in self.running.values()) or 'none'}.")
        lines.append(f"Not started: {', '.join(s.id for s in self.pending) or 'none'}.")
        lines.append("Call finish with decision keep (go on), revise (steps: every step to run from now on, "
                     "replacing those not started; running steps go on) or abandon (stop and answer).")
        known = self.pending_ids()
        review = _as(Review, await self.brain(self.review_schema, "\n".join(lines), f"review/{self.revision}",
                                              lambda r: self.check_review(_as(Review, r), known)))
        if review.decision == "abandon":
            for task, step in list(self.running.items()):
                task.cancel()
                self.publish(step, "cancelled")
            self.running.clear()
            self.pending = []
        elif review.decision == "revise":
            revised = Plan(goal="revised", steps=review.steps or [])
            revised = await self.adopt(revised, known, review.reason)
            self.pending = list(revised.steps)

    def check_review(self, review: Review, known: set[str]) -> None:
        if review.decision == "revise":
            self.check(review.steps or [], known)

    def pending_ids(self) -> set[str]:
        """Ids a revision may depend on but not reuse: finished and running steps."""
        return {*self.done, *self.failed, *(s.id for s in self.running.values())}

    async def answer(self) -> T:
        ended = [s for s in self.steps.values() if s.id in self.done or s.id in self.failed]
        lines = [self.report(s) for s in ended if s.id not in self.shown]
        if skipped := [s.id for s in self.steps.values() if s.id not in self.done and s.id not in self.failed]:
            lines.append(f"Steps that did not run: {', '.join(skipped)}.")
        lines.append("The plan is over. Now answer the user's request from these results.")
        output_type = self.sup.output or str
        return await self.brain(output_type, "\n".join(lines), "answer", None,
                                ends_with="text" if output_type is str else "finish")

    def report(self, step: PlanStep) -> str:
        self.shown.add(step.id)
        if step.id in self.done:
            return f"Step {step.id} ({step.agent}) finished: {to_observation(self.done[step.id])}"
        return f"Step {step.id} ({step.agent}) failed: {self.failed[step.id]}"

    async def brain(self, output: type[Any], prompt: str, phase: str, validator: Validator | None,
                    ends_with: Literal["finish", "text"] = "finish") -> Any:
        """One call of the supervisor's own conversation; a limit it hits ends the whole run."""
        agent: Agent[Any] = Agent(self.sup.name, self.system, output=output, model=self.sup.model,
                                  settings=self.sup.settings, validator=validator, ends_with=ends_with,
                                  max_steps=self.sup.max_steps)
        result = await agent.run_in(self.scope.within(phase), prompt, self.messages)
        self.messages = result.messages
        self.log.extend(result.steps)
        if not result.ok:
            raise StopRun(result.stop_reason, result.detail)
        return result.output

    def publish(self, step: PlanStep, status: Literal["started", "done", "failed", "cancelled"],
                output: Any = None, error: str | None = None) -> None:
        self.scope.publish(PlanStepChanged(agent=self.scope.path, step=step.id, by=step.agent, task=step.task,
                                           status=status, output=output,
                                           error=error))

    def result(self, reason: StopReason, detail: str, output: T | None) -> RunResult[T]:
        for i, step in enumerate(self.log):
            step.index = i
        return RunResult(output=output, stop_reason=reason, usage=self.scope.budget.usage, steps=list(self.log),
                         messages=list(self.messages), detail=detail, agent=self.scope.path,
                         children=list(self.scope.children))
