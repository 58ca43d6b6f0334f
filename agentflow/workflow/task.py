"""Workflow tasks: a prompt (`@task`), plain Python (`@step`), or an `Agent`/`Supervisor`.

A prompt task's description (or docstring) is its prompt and its parameters are formatted into
it; its return annotation is what the model must produce. `str` is a templated task (the reply's
text is the output); any other type is a tool-based task (the model must call `finish` with
that structure, validated by pydantic and fed back when wrong). With `tools=` the task is a
small ReAct agent that ends with `finish`. Every model call goes through the core's agent loop
and step runner, so usage, limits, events and journaling work exactly as for agents.
"""

from __future__ import annotations

import asyncio
import inspect
import string
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from pydantic import BaseModel, ConfigDict, create_model

from ..agent.loop import Agent
from ..core.binding import bound
from ..core.errors import ConfigError
from ..core.messages import Message
from ..core.tool import Tool, to_observation
from ..models import Model, ModelSettings, get_model
from ..models.defaults import default_model
from ..runtime.requests import HumanReply, HumanRequest
from ..runtime.scope import Scope, entered
from .nodes import MISSING, Param, Unit, current_model, kinds, signature_of

if TYPE_CHECKING:
    from ..teams.supervisor import Supervisor

T = TypeVar("T")


class TaskError(Exception):
    """A task could not produce its output; `retryable` is False when trying again cannot help
    (a budget is spent)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass
class Context:
    """What a task execution may use: its scope (path, step names, budget, events) and the
    workflow's model."""

    scope: Scope
    model: Model | None
    settings: ModelSettings | None = None


@contextmanager
def use_model(model: str | Model) -> Generator[Model]:
    """The model for tasks awaited directly in this block (`await home_town("Tony Blair")`),
    as a workflow's `model=` is for its tasks."""
    resolved = get_model(model) if isinstance(model, str) else model
    with bound(current_model, (resolved, current_model.get()[1])):
        yield resolved


class Task(Unit[T]):
    """A leaf unit: runs `execute` with its inputs."""

    async def execute(self, inputs: dict[str, Any], ctx: Context) -> T:
        raise NotImplementedError


# -- prompts ----------------------------------------------------------------------------------

def fields_of(template: str) -> set[str]:
    """The parameter names a template refers to (`{storefront.name}` refers to `storefront`)."""
    names: set[str] = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            head = field.split(".", 1)[0].split("[", 1)[0]
            if not head or head.isdigit():
                raise ConfigError(f"prompt {template[:60]!r} has a positional placeholder {{{field}}}; name the "
                                  "parameter instead (write {{ and }} for literal braces)")
            names.add(head)
    return names


class _Shown:
    """A value as a prompt shows it: models and containers as JSON, attributes reachable
    (`{storefront.name}`), everything else as `format()` would."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, name: str) -> _Shown:
        return _Shown(getattr(self.value, name))

    def __getitem__(self, key: Any) -> _Shown:
        return _Shown(self.value[key])

    def __format__(self, spec: str) -> str:
        if isinstance(self.value, BaseModel | dict | list | tuple) and not spec:
            return to_observation(self.value)
        return format(self.value, spec)


def render(template: str, values: Mapping[str, Any]) -> str:
    return template.format_map({k: _Shown(v) for k, v in values.items()}) if fields_of(template) else template


def check_template(template: str, params: Sequence[Param], what: str) -> set[str]:
    used = fields_of(template)
    names = [p.name for p in params]
    if unknown := sorted(used - set(names)):
        raise ConfigError(f"{what}: the prompt refers to {{{unknown[0]}}}, which is not a parameter "
                          f"(parameters: {', '.join(names) or 'none'}). Fix the placeholder or add the parameter")
    return used


class PromptTask(Task[T]):
    """`@task`: an LLM call whose prompt is the description, formatted with the inputs.

    If the function's body returns a string, that string is the request (the user message) and
    the description becomes the system message: the Opsmate `@dino` style, for prompts that need
    Python to assemble. Parameters the description does not mention are appended to it, one
    section each (None values are left out)."""

    kind = "prompt"

    def __init__(self, fn: Callable[..., Any], *, description: str | None, instructions: str | None,
                 model: str | Model | None, tools: Sequence[Tool[Any] | Callable[..., Any]],
                 settings: ModelSettings | None, retries: int | None, name: str | None,
                 max_steps: int | None, output: Any = None) -> None:
        params, returns = signature_of(fn, "task")
        returns = output or returns
        name = name or fn.__name__
        if returns is None or returns is type(None):
            raise ConfigError(f"task {name!r} returns None: annotate what the model must produce (-> str for text)")
        super().__init__(name, params, str if returns is MISSING else returns, retries=retries)
        prompt = inspect.cleandoc(description or fn.__doc__ or "")
        if not prompt:
            raise ConfigError(f"task {name!r} has no prompt: give @task(\"...\") a description or write a docstring")
        self.fn, self.prompt, self.instructions = fn, prompt, instructions
        self.used = check_template(prompt, params, f"task {name!r}")
        self.model, self.tools, self.settings, self.max_steps = model, list(tools), settings, max_steps
        self._agents: dict[tuple[Model, ModelSettings | None], Agent[Any]] = {}

    async def messages(self, inputs: Mapping[str, Any]) -> tuple[list[Message], str]:
        """The system messages and the request for these inputs."""
        request = self.fn(**inputs)
        if inspect.isawaitable(request):
            request = await request
        prompt = render(self.prompt, inputs)
        if request is not None and not isinstance(request, str):
            raise ConfigError(f"task {self.name!r}: its body returned {type(request).__name__}; a @task body may "
                              "only return the request text (str) or nothing")
        system = [m for m in (self.instructions, prompt if request is not None else None) if m]
        if request is None:
            extra = [f"{k}:\n{to_observation(v)}" for k, v in inputs.items() if k not in self.used and v is not None]
            request = "\n\n".join([prompt, *extra])
        return [Message.system("\n\n".join(system))] if system else [], request

    def agent(self, model: Model, defaults: ModelSettings | None = None) -> Agent[Any]:
        """The agent that runs this task on `model`; the task's settings lie over the workflow's."""
        if (agent := self._agents.get((model, defaults))) is None:
            typed = self.output_type is not str
            settings = (defaults or ModelSettings()).merged(self.settings)
            if typed and not self.tools:  # a tool-based task: the reply must be the structure
                settings = ModelSettings(tool_choice="required").merged(settings)
            agent = Agent(self.name, tools=self.tools, output=self.output_type, model=model, settings=settings,
                          max_steps=self.max_steps or (30 if self.tools else 4),
                          ends_with="finish" if typed or self.tools else "text")
            self._agents[(model, defaults)] = agent
        return agent

    def resolve_model(self, ctx: Context) -> Model:
        if isinstance(self.model, Model):
            return self.model
        if self.model is not None:
            self.model = get_model(self.model)
            return self.model
        return ctx.model or default_model()

    async def execute(self, inputs: dict[str, Any], ctx: Context) -> T:
        history, request = await self.messages(inputs)
        result = await self.agent(self.resolve_model(ctx), ctx.settings).run_in(ctx.scope, request, history)
        if not result.ok:
            raise TaskError(f"the model did not produce the output ({result.stop_reason}: {result.detail})",
                            retryable=result.stop_reason in ("max_steps", "error", "loop"))
        return cast(T, result.output)


# -- plain Python -----------------------------------------------------------------------------

class PythonTask(Task[T]):
    """`@step` (or a plain function in a composition): Python, sync or async. Its result is
    journaled as one step; LLM tasks awaited inside it count towards it."""

    kind = "python"

    def __init__(self, fn: Callable[..., Any], *, retries: int | None = None, name: str | None = None) -> None:
        params, returns = signature_of(fn, "step")
        super().__init__(name or getattr(fn, "__name__", "step"), params, Any if returns is MISSING else returns,
                         retries=retries)
        self.fn = fn
        self._envelope: type[BaseModel] | None = None

    @property
    def envelope(self) -> type[BaseModel]:
        """The journal's record type for this step's output."""
        if self._envelope is None:
            config = ConfigDict(arbitrary_types_allowed=True)
            try:
                self._envelope = create_model(f"{self.name}_output", __config__=config, value=(self.output_type, ...))
            except Exception:
                self._envelope = create_model(f"{self.name}_output", __config__=config, value=(Any, ...))
        return self._envelope

    async def execute(self, inputs: dict[str, Any], ctx: Context) -> T:
        async def call() -> BaseModel:
            with entered(ctx.scope):
                if inspect.iscoroutinefunction(self.fn):
                    value = await self.fn(**inputs)
                else:  # a blocking function must not stall the tasks running beside it
                    value = await asyncio.to_thread(self.fn, **inputs)
            return self.envelope.model_construct(value=value)

        return (await ctx.scope.runner.step(f"{ctx.scope.key}/python", call, self.envelope)).value  # type: ignore


# -- agents -----------------------------------------------------------------------------------

class AgentTask(Task[T]):
    """An `Agent` or `Supervisor` as a task: the prompt (its placeholders are the task's
    parameters) becomes the agent's task; its `finish` output is the task's output."""

    kind = "agent"

    def __init__(self, target: Agent[T] | Supervisor[T], prompt: str | None, *, name: str | None,
                 retries: int | None) -> None:
        what = f"task {name or target.name!r}"
        if prompt is None:
            params: tuple[Param, ...] = (Param("task", str),)
            prompt = "{task}"
        else:
            params = tuple(Param(n) for n in sorted(fields_of(prompt), key=prompt.index))
        check_template(prompt, params, what)
        output = target.output.type if isinstance(target, Agent) else (target.output or str)
        super().__init__(name or target.name, params, output, retries=retries)
        self.target, self.prompt = target, prompt

    async def execute(self, inputs: dict[str, Any], ctx: Context) -> T:
        with entered(ctx.scope):
            result = await self.target.run(render(self.prompt, inputs))
        if not result.ok:
            raise TaskError(f"agent {self.target.name!r} stopped: {result.stop_reason} ({result.detail})",
                            retryable=result.stop_reason in ("max_steps", "error", "loop"))
        return result.output  # type: ignore[return-value]


# -- people -----------------------------------------------------------------------------------

class HumanTask(Task[str]):
    """`ask_human("Which city, given {plan}?")`: the workflow waits for a person's answer (a durable
    run waits in the database; in memory the `default` is the answer, or the task fails)."""

    kind = "human"

    def __init__(self, question: str, *, name: str, timeout: float | None, default: str | None) -> None:
        params = tuple(Param(n) for n in sorted(fields_of(question), key=question.index))
        check_template(question, params, f"task {name!r}")
        super().__init__(name, params, str, retries=0)
        self.question, self.timeout, self.default = question, timeout, default

    async def execute(self, inputs: dict[str, Any], ctx: Context) -> str:
        fallback = None if self.default is None else HumanReply(answer=self.default)
        reply = await ctx.scope.runner.wait(f"{ctx.scope.key}/ask", HumanRequest(
            kind="question", question=render(self.question, inputs), agent=ctx.scope.path, timeout=self.timeout,
            default=fallback))
        return reply.answer or ""


def ask_human(question: str, *, name: str = "ask_human", timeout: float | None = None,
              default: str | None = None) -> HumanTask:
    """A workflow task that asks a person `question` (its `{placeholders}` are the task's inputs)."""
    return HumanTask(question, name=name, timeout=timeout, default=default)


# -- decorators -------------------------------------------------------------------------------

F = TypeVar("F")


@overload
def task(fn: Callable[..., Awaitable[T]], /) -> PromptTask[T]: ...
@overload
def task(fn: Callable[..., T], /) -> PromptTask[T]: ...
@overload
def task(agent: Agent[T], prompt: str | None = None, /, *, name: str | None = ...,
         retries: int | None = ...) -> AgentTask[T]: ...
@overload
def task(agent: Supervisor[T], prompt: str | None = None, /, *, name: str | None = ...,
         retries: int | None = ...) -> AgentTask[T]: ...
@overload
def task(description: str | None = None, /, *, output: type[T], instructions: str | None = ...,
         model: str | Model | None = ..., tools: Sequence[Tool[Any] | Callable[..., Any]] = ...,
         settings: ModelSettings | None = ..., retries: int | None = ..., name: str | None = ...,
         max_steps: int | None = ...) -> Callable[[Callable[..., Any]], PromptTask[T]]: ...
@overload
def task(description: str | None = None, /, *, instructions: str | None = ..., model: str | Model | None = ...,
         tools: Sequence[Tool[Any] | Callable[..., Any]] = ..., settings: ModelSettings | None = ...,
         retries: int | None = ..., name: str | None = ..., max_steps: int | None = ...
         ) -> Callable[[Callable[..., Any]], PromptTask[Any]]: ...
def task(target: Any = None, prompt: str | None = None, /, *, output: Any = None, instructions: str | None = None,
         model: str | Model | None = None, tools: Sequence[Tool[Any] | Callable[..., Any]] = (),
         settings: ModelSettings | None = None, retries: int | None = None, name: str | None = None,
         max_steps: int | None = None) -> Any:
    """A workflow task. `@task("What is a famous line by {character}?")` or `@task` with a
    docstring makes a prompt task; `task(agent, "Write an email about {idea}")` makes an agent
    task. `output` names the result type when the body returns the request text (so the function
    can be annotated `-> str` for type checkers); `retries` re-runs a failed task; `model`
    overrides the workflow's."""
    from ..teams.supervisor import Supervisor

    if isinstance(target, Agent | Supervisor):
        return AgentTask(target, prompt, name=name, retries=retries)

    def make(fn: Callable[..., Any], description: str | None = None) -> PromptTask[Any]:
        return PromptTask(fn, description=description, instructions=instructions, model=model, tools=tools,
                          settings=settings, retries=retries, name=name, max_steps=max_steps, output=output)

    if callable(target):
        return make(target)
    if target is not None and not isinstance(target, str):
        raise ConfigError(f"task() takes a prompt string, a function, an Agent or a Supervisor, not {target!r}")
    def decorate(fn: Callable[..., Any]) -> PromptTask[Any]:
        return make(fn, target)

    return decorate


@overload
def step(fn: Callable[..., Awaitable[T]], /) -> PythonTask[T]: ...
@overload
def step(fn: Callable[..., T], /) -> PythonTask[T]: ...
@overload
def step(*, retries: int | None = ..., name: str | None = ...) -> Callable[[Callable[..., Any]], PythonTask[Any]]: ...
def step(fn: Callable[..., Any] | None = None, /, *, retries: int | None = None, name: str | None = None) -> Any:
    """A plain-Python workflow task (sync or async). Plain functions compose without it; use it to
    name the step or give it retries."""
    if fn is not None:
        return PythonTask(fn, retries=retries, name=name)
    def decorate(f: Callable[..., Any]) -> PythonTask[Any]:
        return PythonTask(f, retries=retries, name=name)

    return decorate


kinds.python_task = PythonTask
