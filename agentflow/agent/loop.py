"""`Agent`: a ReAct loop that ends when the model calls `finish` with the task's typed result.

model -> tool calls (concurrently) -> observations -> ... -> `finish`. Everything the model can
get wrong (an unknown tool, bad arguments, a tool that raises, a text reply, an invalid
`finish`) goes back to it as an observation; limits end the run with the history intact.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, Literal, TypeVar, cast, overload

from pydantic.errors import PydanticSchemaGenerationError

from ..core.errors import ConfigError, ModelError, OutputValidationError, StopRun, keep_partial, partial_of
from ..core.events import Emit, Event, RunStarted, TextChunk
from ..core.limits import Budget, Limits
from ..core.messages import Message, ModelResponse, TextDelta, ToolCall
from ..core.output import FINISH, OutputSchema
from ..core.result import ModelFailed, ModelStep, RunResult, StopReason, ToolStep
from ..core.tool import (
    TOOL_NAME,
    Tool,
    ToolArgumentsError,
    ToolError,
    ToolTimeout,
    Unshowable,
    as_tool,
    to_observation,
)
from ..models import Model, ModelSettings, get_model, parse_model_string
from ..models.base import ToolSpec
from ..models.defaults import default_model
from ..runtime.guards import REPEATED, AlreadyAnswered, DelegationGuard, LoopDetected, noted_if_repeated
from ..runtime.requests import HumanReply, HumanRequest
from ..runtime.runner import StepRunner
from ..runtime.scope import Scope, conclude, entered, open_scope
from . import grounding
from .delegation import AgentTool

log = logging.getLogger("agentflow.tools")
T = TypeVar("T")
R = TypeVar("R")
EndsWith = Literal["finish", "text"]
Approver = Callable[[ToolCall, Tool[Any]], bool | Awaitable[bool]]
Validator = Callable[[Any], object]

NUDGE = "You replied without calling a tool. Call `finish` with the final answer if the task is done; " \
        "otherwise call one of your tools."

async def _timed(awaitable: Awaitable[Any], seconds: float) -> Any:
    try:
        return await asyncio.wait_for(awaitable, max(seconds, 0.0))
    except TimeoutError:
        raise StopRun("max_time", "the wall-time limit was reached during a step") from None


def check_agent(name: str, max_steps: int | None, max_output_retries: int, approve: Any, validator: Any) -> None:
    """The arguments of `Agent()` that would otherwise fail later, at a run or at the provider."""
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigError(f"agent name {name!r} is not allowed: an agent is called as a tool, and providers accept "
                          "1-64 letters, digits, '_' or '-'. Fix: e.g. Agent('my_agent', ...)")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"agent {name!r}: max_steps={max_steps} must be at least 1 (or None for no limit)")
    if max_output_retries < 0:
        raise ConfigError(f"agent {name!r}: max_output_retries={max_output_retries} must be 0 or more")
    for what, value in (("approve", approve), ("validator", validator)):
        if value is not None and not callable(value):
            raise ConfigError(f"agent {name!r}: {what}={value!r} is not a function. Fix: pass a function, or None")


class Agent(Generic[T]):
    """A task agent. `output` is the type `finish` must produce (`str` by default).

    `tools` may hold other agents: each becomes a tool that delegates a task to it (see
    `as_tool`). `max_steps` bounds this agent's own model calls; `limits` bound the run's whole
    subtree of agents. `validator` checks a `finish` value beyond its type: raise ValueError with
    a message for the model. `ends_with="text"` makes a plain text reply the answer (for
    chat-style agents with a `str` output): `finish` is then not offered, which saves its schema
    in every request."""

    @overload
    def __init__(
        self: Agent[str],
        name: str = ...,
        instructions: str = ...,
        *,
        tools: Sequence[Tool[Any] | Callable[..., Any] | Agent[Any]] = ...,
        output: None = ...,
        model: str | Model | None = ...,
        max_steps: int | None = ...,
        limits: Limits | None = ...,
        settings: ModelSettings | None = ...,
        approve: Approver | None = ...,
        validator: Validator | None = ...,
        max_output_retries: int = ...,
        description: str = ...,
        ends_with: EndsWith = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        name: str = ...,
        instructions: str = ...,
        *,
        tools: Sequence[Tool[Any] | Callable[..., Any] | Agent[Any]] = ...,
        output: type[T],
        model: str | Model | None = ...,
        max_steps: int | None = ...,
        limits: Limits | None = ...,
        settings: ModelSettings | None = ...,
        approve: Approver | None = ...,
        validator: Validator | None = ...,
        max_output_retries: int = ...,
        description: str = ...,
        ends_with: EndsWith = ...,
    ) -> None: ...
    def __init__(
        self,
        name: str = "agent",
        instructions: str = "",
        *,
        tools: Sequence[Tool[Any] | Callable[..., Any] | Agent[Any]] = (),
        output: type[Any] | None = None,
        model: str | Model | None = None,
        max_steps: int | None = 30,
        limits: Limits | None = None,
        settings: ModelSettings | None = None,
        approve: Approver | None = None,
        validator: Validator | None = None,
        max_output_retries: int = 3,
        description: str = "",
        ends_with: EndsWith = "finish",
    ) -> None:
        check_agent(name, max_steps, max_output_retries, approve, validator)
        self.name = name
        self.instructions = instructions
        self.description = description or instructions.split("\n", 1)[0]
        made = [x.as_tool() if isinstance(x, Agent) else as_tool(x) for x in tools]
        self.tools = {t.name: t for t in made}
        if len(self.tools) != len(made):
            [(twice, _)] = Counter(t.name for t in made).most_common(1)
            raise ConfigError(f"agent {name!r}: two tools are called {twice!r}; tool names must be unique. Fix: "
                              "drop the duplicate, or rename one with @tool(name=...)")
        if FINISH in self.tools:
            raise ConfigError(f"agent {name!r}: a tool may not be called {FINISH!r}; that name ends the task")
        if ends_with not in ("finish", "text") or (ends_with == "text" and output not in (None, str)):
            raise ConfigError(f"agent {name!r}: ends_with={ends_with!r} is not possible; use 'finish', or 'text' "
                              "with a str output (a typed output needs `finish`)")
        self.ends_with: EndsWith = ends_with
        try:
            self.output = OutputSchema[Any](output or str)
        except PydanticSchemaGenerationError as e:
            why = e.message.split(". ")[0]
            raise ConfigError(f"agent {name!r}: output={output!r} cannot be made a JSON schema ({why}). "
                              "Fix: use a pydantic model, dataclass, TypedDict or built-in type, whose fields are "
                              "such types too") from None
        self.model = model  # a string is checked now and resolved on first use
        self.max_steps = max_steps
        self.limits = limits or Limits()
        self.settings = settings
        self.approve = approve
        self.validator = validator
        self.max_output_retries = max_output_retries
        self._specs = [t.spec for t in self.tools.values()]
        if ends_with == "finish":
            self._specs.append(self.output.finish_spec())

    @property
    def model(self) -> Model:
        """The model, resolved on first use so an agent can be defined before keys are set."""
        if not isinstance(self._model, Model):
            self._model = default_model() if self._model is None else get_model(self._model)
        return self._model

    @model.setter
    def model(self, model: str | Model | None) -> None:
        """Another model for the runs started from now on (a string is resolved on first use, as in `Agent()`)."""
        if not isinstance(model, (str, Model, type(None))):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigError(f"agent {self.name!r}: model must be a 'provider:model' string or a Model, not "
                              f"{type(model).__name__}")
        if isinstance(model, str):
            try:
                parse_model_string(model)
            except ConfigError as e:
                raise ConfigError(f"agent {self.name!r}: {e}") from None
        self._model = model

    def as_tool(self, name: str | None = None, description: str | None = None, *,
                context: type[Any] | None = str, share: float | None = None) -> AgentTool:
        """This agent as a tool another agent can delegate tasks to.

        The tool takes a `task` and, unless `context=None`, a `context` of the given type (what the
        caller chooses to pass on; a pydantic model for structured context). It returns the
        `finish` output. `share` caps each delegation at that fraction of the caller's remaining
        budget."""
        return AgentTool(self, name=name, description=description, context=context, share=share)

    def specs_for(self, model: Model) -> list[ToolSpec]:
        """The tools offered to `model`; `finish` too when the model cannot end with plain text
        because it must always call one of them (a request without tools is answered in text)."""
        specs = self._specs
        if not model.replies_in_text:
            specs = [self.tools[s.name].spec_for(model) if s.name in self.tools else s for s in specs]
            if self.ends_with == "text" and specs:
                specs.append(self.output.finish_spec())
        return specs

    # -- running --------------------------------------------------------------------------------

    async def run(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
                  path: str | None = None, history: Sequence[Message] | None = None) -> RunResult[T]:
        """Run the task to `finish` or a limit. Exceptions carry the partial `RunResult` as `.result`.

        Inside another run's tool call, this run becomes that run's child (budget, events, steps).
        `history` continues an earlier conversation (`RunResult.messages`) instead of starting anew."""
        return await self.start(task, budget=budget, runner=runner, path=path, history=history).run()

    def run_sync(self, task: str, **kwargs: Any) -> RunResult[T]:
        """`run` for code without an event loop."""
        return run_sync(lambda: self.run(task, **kwargs), "agent.run")

    def stream(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
               path: str | None = None, history: Sequence[Message] | None = None,
               deltas: bool = False) -> EventStream[RunResult[T]]:
        """The run's events (its steps, and every sub-agent's) as they happen; `.result` at the end.
        `deltas=True` adds this agent's reply text as it is generated (`TextChunk` events)."""
        return EventStream(lambda emit: self.start(task, budget=budget, runner=runner, path=path, history=history,
                                                   emit=emit, deltas=deltas).run())

    def start(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
              path: str | None = None, history: Sequence[Message] | None = None, emit: Emit | None = None,
              deltas: bool = False) -> Run[T]:
        """A new run of the task, not started yet: `await agent.start(task).run()` is `agent.run(task)`."""
        scope, parent = open_scope(self.name, self.limits, budget=budget, runner=runner, path=path, emit=emit,
                                   deltas=deltas)
        return Run(self, task, scope, parent, history)

    async def run_in(self, scope: Scope, task: str, history: Sequence[Message] | None = None) -> RunResult[T]:
        """A run that is a phase of its caller's run (a supervisor's planning call, a workflow task): the
        caller's scope, no start and end events of its own, not one of its children."""
        return await Run(self, task, scope, None, history, announce=False).run()

    # -- hooks: how agents with a loop of their own (a worklist's, a conversation's) change this one ----

    async def before_turn(self, run: Run[T]) -> None:
        """Before each model call after the first: may add messages to `run.messages`, or raise
        `StopRun` to end the run."""

    def refuse_finish(self, run: Run[T]) -> str | None:
        """Why the model may not end the run yet (it is told so, and goes on), or None."""
        return None

    def review(self, run: Run[T], output: T) -> str | None:
        """What to mend in a valid `finish` before it stands (asked once a run: the second stands), or None.
        By default the grounding checks (agent/grounding.py), for an agent that has tools."""
        return grounding.refusal(run.task, output, run.messages) if self.tools else None

    def on_text(self, run: Run[T], text: str) -> None:
        """The model replied with text and no tool call: with `ends_with="text"` the text is the answer
        (unless `refuse_finish` says not yet); otherwise the model is nudged to act or finish."""
        refusal = self.refuse_finish(run)
        if self.ends_with == "text" and refusal is None:
            run.output, run.finished = cast(T, text), True
        else:
            run.messages.append(Message.user(refusal or NUDGE))

    def on_call(self, run: Run[T], call: ToolCall) -> Awaitable[ToolStep] | None:
        """A tool call this agent handles itself, before its tools and `finish` (a conversation's `say`):
        the step it makes, or None for the usual handling."""
        return None


def run_sync(start: Callable[[], Awaitable[R]], what: str) -> R:
    """Run `start()` to completion from code that has no event loop (`what` names the async call)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async def main() -> R:
            return await start()
        return asyncio.run(main())
    raise RuntimeError(f"run_sync() was called inside a running event loop; use `await {what}(...)`")


class EventStream(Generic[R]):
    """An async iterator over a run's events, holding the run's result when it ends.

    Leaving the iteration early cancels the run."""

    def __init__(self, start: Callable[[Emit], Awaitable[R]]) -> None:
        self._start = start
        self._result: R | None = None
        self._done = False

    async def __aiter__(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        task = asyncio.ensure_future(self._start(queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
            self._result, self._done = task.result(), True
        finally:
            task.cancel()

    @property
    def result(self) -> R:
        if not self._done:
            raise RuntimeError("the run has not finished: iterate the stream to the end first")
        return cast(R, self._result)


AgentStream = EventStream  # the name `Agent.stream` returned before events covered sub-agents


class Run(Generic[T]):
    """The state of one run, and the loop. The agent's hooks (`before_turn`, `refuse_finish`, `on_text`,
    `on_call`) see it: `messages`, `steps`, `output`, `finished`, `scope`."""

    def __init__(self, agent: Agent[T], task: str, scope: Scope, parent: Scope | None,
                 history: Sequence[Message] | None, announce: bool = True) -> None:
        self.agent, self.task, self.scope, self.parent, self.announce = agent, task, scope, parent, announce
        self.budget = scope.budget
        self.path = scope.path
        self.specs = agent._specs
        scope.guard = DelegationGuard()
        self.messages: list[Message] = list(history or ())
        if agent.instructions and not (self.messages and self.messages[0].role == "system"):
            self.messages.insert(0, Message.system(agent.instructions))
        self.messages.append(Message.user(task))
        self.steps: list[ModelStep | ToolStep] = []
        self.output: T | None = None
        self.finished = False
        self.output_failures = 0
        self.grounding_checked = False

    async def run(self) -> RunResult[T]:
        if self.announce and self.scope.emit is not None:
            self.scope.publish(RunStarted(agent=self.path, id=self.scope.key, task=self.task))
        try:
            self.specs = self.agent.specs_for(self.agent.model)
            while not self.finished:
                if self.steps:
                    await self.within_time(self.agent.before_turn(self))
                reply = await self.call_model()
                self.record(reply)
                calls = reply.response.message.tool_calls
                if not calls:
                    self.agent.on_text(self, reply.response.message.content or "")
                    continue
                done: list[ToolStep] = await self.within_time(asyncio.gather(*map(self.call_tool, calls)))
                for step in done:
                    self.messages.append(Message.tool(step.call, step.observation))
                    self.record(step)
                self.check_tool_steps(done)
            return self.end(self.make_result("finish", ""))
        except StopRun as stop:
            return self.end(self.make_result(stop.reason, stop.detail))
        except asyncio.CancelledError as exc:  # e.g. a worklist task cancelled: its parent keeps what it did
            keep_partial(exc, self.end(self.make_result("cancelled", "the run was cancelled")))
            raise
        except Exception as exc:  # nothing paid for is lost: the partial result rides on the error
            if partial_of(exc) is None:
                keep_partial(exc, self.make_result("error", f"{type(exc).__name__}: {exc}"))
            self.end(partial_of(exc))
            raise

    async def call_model(self) -> ModelStep:
        agent = self.agent
        if hit := self.budget.exceeded():
            raise StopRun(*hit)
        turns = sum(1 for s in self.steps if isinstance(s, ModelStep))
        if agent.max_steps is not None and turns >= agent.max_steps:
            raise StopRun("max_steps", f"agent {agent.name!r} reached max_steps={agent.max_steps}")
        self.budget.count_step()
        settings = agent.settings
        if not agent.model.replies_in_text and self.looping():
            settings = (settings or ModelSettings()).merged(ModelSettings(tool_choice=FINISH))
        began: list[float] = []  # when the call is made; a step the journal replays is not made again

        def request() -> Awaitable[ModelResponse]:  # not a coroutine: no frame of its own held during the call
            began.append(time.time())
            if self.scope.deltas:
                return self.streamed(settings)
            return agent.model.request(self.messages, tools=self.specs, settings=settings)

        try:
            response = await self.within_time(
                self.scope.runner.step(f"{self.scope.key}/model/{len(self.steps)}", request, ModelResponse))
        except Exception as e:
            if began and self.scope.emit is not None:
                error = e.reason if isinstance(e, StopRun) else type(e).__name__
                self.scope.publish(ModelFailed(agent=self.path, index=len(self.steps), model=agent.model.name,
                                               error=error, detail=str(e), started=began[0],
                                               seconds=time.time() - began[0]))
            raise
        self.budget.charge(response.usage)
        self.messages.append(response.message)
        started = began[0] if began else 0.0
        return ModelStep(agent=self.path, index=0, response=response, model=agent.model.name, started=started,
                         seconds=time.time() - started if began else 0.0)

    async def streamed(self, settings: ModelSettings | None) -> ModelResponse:
        """One model call streamed: its text published as it arrives, the whole reply returned."""
        async for event in self.agent.model.stream(self.messages, tools=self.specs, settings=settings):
            if isinstance(event, ModelResponse):
                return event
            if isinstance(event, TextDelta) and event.text:
                self.scope.publish(TextChunk(agent=self.path, text=event.text))
        model = self.agent.model
        raise ModelError(f"{model.name}: the stream ended without a complete reply", provider=model.provider,
                         model=model.model_name)

    async def call_tool(self, call: ToolCall) -> ToolStep:
        began = time.time()

        def step(observation: str, error: str | None = None) -> ToolStep:
            return ToolStep(agent=self.path, index=0, call=call, observation=observation, error=error, started=began,
                            seconds=time.time() - began)

        if (own := self.agent.on_call(self, call)) is not None:
            done = await own
            return done if done.started else done.model_copy(update={"started": began,
                                                                     "seconds": time.time() - began})
        if call.name == FINISH:
            return self.accept_finish(call, step)
        tool = self.agent.tools.get(call.name)
        if tool is None:
            names = ", ".join([*self.agent.tools, FINISH])
            return step(f"There is no tool named {call.name!r}. Available tools: {names}.", "unknown_tool")
        if tool.requires_approval and not (verdict := await self.approval(call, tool)).approved:
            why = f" ({verdict.reason})" if verdict.reason else ""
            return step(f"The call to {call.name} was not approved{why}, so it did not run.", "rejected")

        async def execute() -> ToolStep:
            try:
                with entered(self.scope.within(f"tool/{call.id}")):
                    return step(to_observation(await tool.call(call.arguments)))
            except ToolArgumentsError as e:
                return step(f"Invalid arguments for {call.name}: {e}. Call it again with corrected arguments.",
                            "invalid_arguments")
            except LoopDetected as e:
                return step(str(e), "loop")
            except AlreadyAnswered as e:
                return step(str(e), "repeated")
            except ToolError as e:
                return step(str(e), "failed")
            except ToolTimeout as e:
                return step(f"{e}.", "timeout")
            except Unshowable as e:  # the tool's author must fix it; the model can only go on without the value
                log.warning("tool %r returned %s", call.name, e)
                return step(f"{call.name} ran, but its result cannot be shown ({e})", "unshowable")
            except Exception as e:  # a failing tool is an observation, never a crash
                return step(f"{call.name} raised {type(e).__name__}: {e}", "raised")

        if not tool.journaled:  # made of steps itself: journaling it whole would nest steps
            return self.unrepeated(await execute())
        return self.unrepeated(await self.scope.runner.step(f"{self.scope.key}/tool/{call.id}", execute, ToolStep))

    def looping(self) -> bool:
        """The last tool call repeated an earlier one, result and all (or a delegation its agent had
        answered). A grammar-constrained small model would go on repeating it to max_steps or the
        loop guard, so its next action is `finish` (when offered)."""
        last = next((s for s in reversed(self.steps) if isinstance(s, ToolStep)), None)
        return (last is not None and (last.error == "repeated" or last.observation.endswith(REPEATED))
                and any(spec.name == FINISH for spec in self.specs))

    def unrepeated(self, step: ToolStep) -> ToolStep:
        """Small models often repeat a call whose result they already have, until max_steps: say so."""
        return noted_if_repeated([s for s in self.steps if isinstance(s, ToolStep)], step)

    def accept_finish(self, call: ToolCall, step: Callable[[str, str | None], ToolStep]) -> ToolStep:
        if refusal := self.agent.refuse_finish(self):
            return step(refusal, "rejected")
        try:
            output = self.agent.output.validate(call.arguments)
            if self.agent.validator is not None:
                self.agent.validator(output)
        except (ToolArgumentsError, ValueError) as e:
            self.output_failures += 1
            return step(f"Invalid `finish` arguments: {e}. Call `finish` again with corrected arguments.",
                        "invalid_output")
        if not self.grounding_checked:  # once: a second finish stands, invented or not
            self.grounding_checked = True
            if refusal := self.agent.review(self, output):
                return step(refusal, "ungrounded")
        self.output, self.finished = output, True
        return step("Done.", None)

    async def approval(self, call: ToolCall, tool: Tool[Any]) -> HumanReply:
        """The agent's `approve` callback decides (its verdict journaled), else a human through the runner."""
        name = f"{self.scope.key}/approve/{call.id}"
        if (approve := self.agent.approve) is not None:
            async def decide() -> HumanReply:
                verdict = approve(call, tool)
                return HumanReply(approved=bool(await verdict if inspect.isawaitable(verdict) else verdict))
            return await self.scope.runner.step(name, decide, HumanReply)
        timeout = tool.approval_timeout
        default = HumanReply(approved=tool.approve_on_timeout,
                             reason="no one approved it" if timeout is None else f"no answer within {timeout:g} s")
        return await self.scope.runner.wait(name, HumanRequest(
            kind="approval", question=f"May {self.path} call {call.name}({call.arguments})?", agent=self.path,
            tool=call.name, arguments=call.arguments, timeout=timeout, default=default))

    def within_time(self, awaitable: Awaitable[Any]) -> Awaitable[Any]:
        left = self.budget.remaining_seconds()
        return awaitable if left is None else _timed(awaitable, left)  # no wrapper frame held while waiting

    def check_tool_steps(self, steps: list[ToolStep]) -> None:
        if loop := next((s for s in steps if s.error == "loop"), None):
            raise StopRun("loop", loop.observation)
        if not self.finished and 0 < self.output_failures >= self.agent.max_output_retries:
            result = self.make_result("error", "finish arguments kept failing validation")
            raise OutputValidationError(
                f"agent {self.agent.name!r}: the model called `finish` {self.output_failures} times with "
                f"arguments that fail the output schema ({self.agent.output.type!r}); the last error is in "
                "`.result.steps`. Fix: simplify the output type, describe its fields, or use a stronger model",
                cast(RunResult[Any], result),
            )

    def record(self, step: ModelStep | ToolStep) -> None:
        step.index = len(self.steps)
        self.steps.append(step)
        self.scope.publish(step)

    def make_result(self, reason: StopReason, detail: str) -> RunResult[T]:
        return RunResult(output=self.output if reason == "finish" else None, stop_reason=reason,
                         usage=self.budget.usage, steps=list(self.steps), messages=list(self.messages),
                         detail=detail, agent=self.path, children=list(self.scope.children))

    def end(self, result: RunResult[T]) -> RunResult[T]:
        if self.announce:
            conclude(self.scope, self.parent, result)
        return result
