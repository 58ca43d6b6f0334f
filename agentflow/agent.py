"""`Agent`: a ReAct loop that ends when the model calls `finish` with the task's typed result.

model -> tool calls (concurrently) -> observations -> ... -> `finish`. Everything the model can
get wrong (an unknown tool, bad arguments, a tool that raises, a text reply, an invalid
`finish`) goes back to it as an observation; limits end the run with the history intact.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, Literal, TypeVar, cast, overload

from .errors import ConfigError, OutputValidationError
from .limits import Budget, Limits
from .messages import Message, ModelResponse, ToolCall
from .models import Model, ModelSettings, get_model
from .models.defaults import default_model
from .output import FINISH, OutputSchema
from .result import ModelStep, RunResult, Step, StopReason, ToolStep
from .runner import DEFAULT_RUNNER, StepRunner
from .tool import Tool, ToolArgumentsError, ToolTimeout, as_tool, to_observation

T = TypeVar("T")
EndsWith = Literal["finish", "text"]
Approver = Callable[[ToolCall, Tool[Any]], bool | Awaitable[bool]]

NUDGE = "You replied without calling a tool. Call `finish` with the final answer if the task is done; " \
        "otherwise call one of your tools."


class _Stop(Exception):
    """Leaves the loop: a limit was reached (the one place limits end a run)."""

    def __init__(self, reason: StopReason, detail: str) -> None:
        self.reason: StopReason = reason
        self.detail = detail


class Agent(Generic[T]):
    """A task agent. `output` is the type `finish` must produce (`str` by default).

    `ends_with="text"` makes a plain text reply the answer (for chat-style agents with a `str`
    output): `finish` is then not offered, which saves its schema in every request."""

    @overload
    def __init__(
        self: Agent[str],
        name: str = ...,
        instructions: str = ...,
        *,
        tools: Sequence[Tool[Any] | Callable[..., Any]] = ...,
        output: None = ...,
        model: str | Model | None = ...,
        max_steps: int | None = ...,
        limits: Limits | None = ...,
        settings: ModelSettings | None = ...,
        approve: Approver | None = ...,
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
        tools: Sequence[Tool[Any] | Callable[..., Any]] = ...,
        output: type[T],
        model: str | Model | None = ...,
        max_steps: int | None = ...,
        limits: Limits | None = ...,
        settings: ModelSettings | None = ...,
        approve: Approver | None = ...,
        max_output_retries: int = ...,
        description: str = ...,
        ends_with: EndsWith = ...,
    ) -> None: ...
    def __init__(
        self,
        name: str = "agent",
        instructions: str = "",
        *,
        tools: Sequence[Tool[Any] | Callable[..., Any]] = (),
        output: type[Any] | None = None,
        model: str | Model | None = None,
        max_steps: int | None = 30,
        limits: Limits | None = None,
        settings: ModelSettings | None = None,
        approve: Approver | None = None,
        max_output_retries: int = 3,
        description: str = "",
        ends_with: EndsWith = "finish",
    ) -> None:
        self.name = name
        self.instructions = instructions
        self.description = description or instructions.split("\n", 1)[0]
        self.tools = {t.name: t for t in map(as_tool, tools)}
        if FINISH in self.tools:
            raise ConfigError(f"agent {name!r}: a tool may not be called {FINISH!r}; that name ends the task")
        if ends_with not in ("finish", "text") or (ends_with == "text" and output not in (None, str)):
            raise ConfigError(f"agent {name!r}: ends_with={ends_with!r} is not possible; use 'finish', or 'text' "
                              "with a str output (a typed output needs `finish`)")
        self.ends_with: EndsWith = ends_with
        self.output = OutputSchema[Any](output or str)
        self._model = model
        base = limits or Limits()
        self.limits = base if max_steps is None or base.max_steps is not None else \
            base.model_copy(update={"max_steps": max_steps})
        self.settings = settings
        self.approve = approve
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

    # -- running --------------------------------------------------------------------------------

    async def run(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
                  path: str | None = None) -> RunResult[T]:
        """Run the task to `finish` or a limit. Exceptions carry the partial `RunResult` as `.result`."""
        stream = self.stream(task, budget=budget, runner=runner, path=path)
        async for _ in stream:
            pass
        return stream.result

    def run_sync(self, task: str, **kwargs: Any) -> RunResult[T]:
        """`run` for code without an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(task, **kwargs))
        raise RuntimeError("run_sync() was called inside a running event loop; use `await agent.run(...)`")

    def stream(self, task: str, *, budget: Budget | None = None, runner: StepRunner | None = None,
               path: str | None = None) -> AgentStream[T]:
        """The run's step records as they happen; `.result` once the iteration is over."""
        run = _Run[T](self, task, (budget or Budget()).child(self.limits), runner or DEFAULT_RUNNER,
                      path or self.name)
        return AgentStream(run)


class AgentStream(Generic[T]):
    """An async iterator over a run's steps, holding the `RunResult` when it ends."""

    def __init__(self, run: _Run[T]) -> None:
        self._run = run
        self._result: RunResult[T] | None = None

    async def __aiter__(self) -> AsyncIterator[Step]:
        async for step in self._run.steps():
            yield step
        self._result = self._run.result

    @property
    def result(self) -> RunResult[T]:
        if self._result is None:
            raise RuntimeError("the run has not finished: iterate the stream to the end first")
        return self._result


class _Run(Generic[T]):
    """The state of one run, and the loop."""

    def __init__(self, agent: Agent[T], task: str, budget: Budget, runner: StepRunner, path: str) -> None:
        self.agent, self.budget, self.runner, self.path = agent, budget, runner, path
        self.messages: list[Message] = [Message.system(agent.instructions)] if agent.instructions else []
        self.messages.append(Message.user(task))
        self.history: list[Step] = []
        self.output: T | None = None
        self.finished = False
        self.output_failures = 0
        self.result: RunResult[T] | None = None

    async def steps(self) -> AsyncIterator[Step]:
        try:
            while not self.finished:
                response = await self.call_model()
                yield self.record(ModelStep(agent=self.path, index=len(self.history), response=response))
                calls = response.message.tool_calls
                if not calls:
                    self.end_on_text(response.message.content or "")
                    continue
                for step in await self.within_time(asyncio.gather(*map(self.call_tool, calls))):
                    self.messages.append(Message.tool(step.call, step.observation))
                    yield self.record(step)
                self.check_output_failures()
            self.result = self.make_result("finish", "")
        except _Stop as stop:
            self.result = self.make_result(stop.reason, stop.detail)
        except Exception as exc:  # nothing paid for is lost: the partial result rides on the error
            if not hasattr(exc, "result"):
                exc.result = self.make_result("error", f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
            raise

    async def call_model(self) -> ModelResponse:
        if hit := self.budget.exceeded():
            raise _Stop(*hit)
        agent = self.agent
        self.budget.count_step()
        request = lambda: agent.model.request(self.messages, tools=agent._specs,
                                              settings=agent.settings)
        response = await self.within_time(
            self.runner.step(f"{self.path}/model/{len(self.history)}", request, ModelResponse))
        self.budget.charge(response.usage)
        self.messages.append(response.message)
        return response

    def end_on_text(self, text: str) -> None:
        if self.agent.ends_with == "text":
            self.output, self.finished = cast(T, text), True
        else:
            self.messages.append(Message.user(NUDGE))

    async def call_tool(self, call: ToolCall) -> ToolStep:
        def step(observation: str, error: str | None = None) -> ToolStep:
            return ToolStep(agent=self.path, index=0, call=call, observation=observation, error=error)

        if call.name == FINISH:
            try:
                self.output = self.agent.output.validate(call.arguments)
            except ToolArgumentsError as e:
                self.output_failures += 1
                return step(f"Invalid `finish` arguments: {e}. Call `finish` again with corrected arguments.",
                            "invalid_output")
            self.finished = True
            return step("Done.")
        tool = self.agent.tools.get(call.name)
        if tool is None:
            names = ", ".join([*self.agent.tools, FINISH])
            return step(f"There is no tool named {call.name!r}. Available tools: {names}.", "unknown_tool")
        if tool.requires_approval and not await self.approved(call, tool):
            return step(f"The call to {call.name} was not approved, so it did not run.", "rejected")

        async def execute() -> ToolStep:
            try:
                return step(to_observation(await tool.call(call.arguments)))
            except ToolArgumentsError as e:
                return step(f"Invalid arguments for {call.name}: {e}. Call it again with corrected arguments.",
                            "invalid_arguments")
            except ToolTimeout as e:
                return step(f"{e}.", "timeout")
            except Exception as e:  # a failing tool is an observation, never a crash
                return step(f"{call.name} raised {type(e).__name__}: {e}", "raised")

        return await self.runner.step(f"{self.path}/tool/{call.id}", execute, ToolStep)

    async def approved(self, call: ToolCall, tool: Tool[Any]) -> bool:
        if self.agent.approve is None:
            return False
        verdict = self.agent.approve(call, tool)
        return bool(await verdict if inspect.isawaitable(verdict) else verdict)

    async def within_time(self, awaitable: Awaitable[Any]) -> Any:
        left = self.budget.remaining_seconds()
        if left is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, max(left, 0.0))
        except TimeoutError:
            raise _Stop("max_time", "the wall-time limit was reached during a step") from None

    def check_output_failures(self) -> None:
        if not self.finished and 0 < self.output_failures >= self.agent.max_output_retries:
            self.result = self.make_result("error", "finish arguments kept failing validation")
            raise OutputValidationError(
                f"agent {self.agent.name!r}: the model called `finish` {self.output_failures} times with "
                f"arguments that fail the output schema ({self.agent.output.type!r}); the last error is in "
                "`.result.steps`. Fix: simplify the output type, describe its fields, or use a stronger model",
                cast(RunResult[Any], self.result),
            )

    def record(self, step: Step) -> Step:
        step.index = len(self.history)
        self.history.append(step)
        return step

    def make_result(self, reason: StopReason, detail: str) -> RunResult[T]:
        return RunResult(output=self.output if reason == "finish" else None, stop_reason=reason,
                         usage=self.budget.usage, steps=list(self.history), messages=list(self.messages),
                         detail=detail, agent=self.path)
