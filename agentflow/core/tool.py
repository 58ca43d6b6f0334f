"""`@tool`: a typed Python function becomes a tool a model can call.

The signature is the schema: type hints (pydantic models, enums, Literals, optionals),
`Annotated[T, "description"]` and the docstring's parameter docs describe each argument.
Calls are validated by pydantic; what goes wrong inside a call is the caller's to report as
an observation (see `agent.py`), never a crash.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar, cast, get_args, get_origin, get_type_hints, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from ..models.base import Model, ToolSpec
from .errors import ToolDefinitionError
from .schema import drop_defaulted_nulls, strict_schema

R = TypeVar("R")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolArgumentsError(ValueError):
    """The model's arguments did not validate; the message is written for the model to read."""


class ToolError(Exception):
    """Raise from a tool to tell the model what went wrong in your own words: the message becomes
    the observation as it is (other exceptions are shown as `tool raised Type: message`)."""


class ToolTimeout(TimeoutError):
    """The tool ran longer than its `timeout` (distinct from a TimeoutError the tool raised itself)."""


class Tool(Generic[R]):
    """A callable tool: its schema (`spec`), its validated `call`, and its safety flags.

    The schema comes from the function's signature, or from `args_model` (a pydantic model whose
    fields become the function's keyword arguments)."""

    journaled = True  # the agent loop records a call as one step; a tool made of steps says False

    def __init__(
        self,
        fn: Callable[..., R] | Callable[..., Awaitable[R]],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_approval: bool = False,
        timeout: float | None = None,
        args_model: type[BaseModel] | None = None,
        approval_timeout: float | None = None,
        approve_on_timeout: bool = False,
    ) -> None:
        self.fn = fn
        self.name = fn.__name__ if name is None else name
        if not TOOL_NAME.fullmatch(self.name):
            raise ToolDefinitionError(
                f"tool name {self.name!r} is not allowed: providers accept 1-64 letters, digits, '_' or '-'. "
                "Fix: pass name= to @tool"
            )
        summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.requires_approval = requires_approval
        self.approval_timeout, self.approve_on_timeout = approval_timeout, approve_on_timeout
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.args_model = args_model or _args_model(fn, self.name, param_docs)
        self.spec = ToolSpec(name=self.name, description=self.description, parameters=strict_schema(self.args_model))

    def spec_for(self, model: Model) -> ToolSpec:
        """The spec offered to `model`; a tool may offer less to models that cannot use all of it."""
        return self.spec

    def validate(self, arguments: str | dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the function, or `ToolArgumentsError` saying what to fix."""
        parsed = validate_arguments(arguments, self.args_model)
        return {name: getattr(parsed, name) for name in self.args_model.model_fields}

    async def call(self, arguments: str | dict[str, Any]) -> R:
        """Validate, then run (sync functions in a worker thread), within `timeout` if set."""
        kwargs = self.validate(arguments)
        if self.is_async:
            coro = self.fn(**kwargs)
        else:
            coro = asyncio.to_thread(functools.partial(self.fn, **kwargs))
        if self.timeout is None:
            return await coro  # type: ignore[no-any-return]
        task = asyncio.ensure_future(cast(Awaitable[R], coro))
        done, _ = await asyncio.wait([task], timeout=self.timeout)
        if not done:
            task.cancel()
            raise ToolTimeout(f"{self.name} timed out after {self.timeout} s")
        return task.result()  # type: ignore[no-any-return]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a tool directly calls the function, so decorated functions stay usable."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"


@overload
def tool(fn: Callable[..., R], /) -> Tool[R]: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
    timeout: float | None = None,
    approval_timeout: float | None = None,
    approve_on_timeout: bool = False,
) -> Callable[[Callable[..., R]], Tool[R]]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
    timeout: float | None = None,
    approval_timeout: float | None = None,
    approve_on_timeout: bool = False,
) -> Tool[Any] | Callable[[Callable[..., Any]], Tool[Any]]:
    """Make a tool of a function: `@tool` or `@tool(requires_approval=True, timeout=30)`. A durable run
    waits for a human's approval up to `approval_timeout` seconds (forever when None), then approves or
    refuses as `approve_on_timeout` says."""

    def wrap(f: Callable[..., Any]) -> Tool[Any]:
        return Tool(f, name=name, description=description, requires_approval=requires_approval, timeout=timeout,
                    approval_timeout=approval_timeout, approve_on_timeout=approve_on_timeout)

    return wrap(fn) if fn is not None else wrap


def as_tool(obj: Tool[Any] | Callable[..., Any]) -> Tool[Any]:
    """A `Tool`, wrapping a plain function if need be."""
    return obj if isinstance(obj, Tool) else Tool(obj)


class Unshowable(TypeError):
    """A value with neither a JSON form nor a `__str__` of its own: the model would read `<X object at 0x...>`."""


def _shown(value: Any) -> str:
    kind = type(value)
    if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
        raise Unshowable(f"a value of type {kind.__name__} cannot be shown to a model: it is not JSON and has no "
                         "__str__. Fix: return a str, dict, list, pydantic model or dataclass, or give its class a "
                         "__str__")
    return str(value)


def to_observation(value: Any) -> str:
    """A tool's return value as the text the model reads (JSON for anything but a string)."""
    if isinstance(value, str):
        return value
    unshowable: list[Unshowable] = []

    def fallback(part: Any) -> str | None:
        try:
            return _shown(part)
        except Unshowable as e:  # pydantic would wrap it: keep it to raise as it is
            unshowable.append(e)
            return None

    try:
        text = pydantic_core.to_json(value, fallback=fallback).decode()
    except (TypeError, ValueError):
        return _shown(value)
    if unshowable:
        raise unshowable[0]
    return text


def arguments_object(arguments: str | dict[str, Any]) -> dict[str, Any]:
    """The model's arguments as a dict, or `ToolArgumentsError` when they are not a JSON object."""
    if isinstance(arguments, str):
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as e:
            raise ToolArgumentsError(f"the arguments are not valid JSON ({e.msg}); send a JSON object") from None
    else:
        raw = arguments
    if not isinstance(raw, dict):
        raise ToolArgumentsError("the arguments must be a JSON object of parameter names to values")
    return cast(dict[str, Any], raw)


def validate_arguments(arguments: str | dict[str, Any], model: type[BaseModel]) -> BaseModel:
    """The model's arguments (JSON text or a dict) validated against `model`; the error message of
    `ToolArgumentsError` is written for the model to read and act on."""
    raw = arguments_object(arguments)
    known = {key for name, f in model.model_fields.items() for key in (name, f.alias) if key}
    unknown = sorted(set(raw) - known)
    if unknown:  # the schema says additionalProperties: false; a misspelt field must not vanish
        raise ToolArgumentsError(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(sorted(known))}")
    try:
        return model.model_validate(drop_defaulted_nulls(raw, model))
    except ValidationError as e:
        raise ToolArgumentsError(format_validation_error(e)) from None


def format_validation_error(error: ValidationError) -> str:
    parts: list[str] = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        given = e.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) and len(repr(given)) <= 60 else ""
        parts.append(f"{where}: {e['msg']}{shown}")
    return "; ".join(parts)


# -- signature -> pydantic model ---------------------------------------------------------------


def _args_model(fn: Callable[..., Any], tool_name: str, param_docs: dict[str, str]) -> type[BaseModel]:
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as e:  # an annotation that does not resolve
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve its type hints ({e}). "
                                  "Fix: import every type its signature names") from e
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter *{param.name} cannot be described to a model. "
                "Fix: list the arguments it takes as named parameters"
            )
        if param.name not in hints:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {param.name!r} has no type hint. "
                f"Fix: annotate it, e.g. `{param.name}: str`"
            )
        annotation = hints[param.name]
        description = param_docs.get(param.name)
        if get_origin(annotation) is Annotated:
            base, *extras = get_args(annotation)
            texts = [x for x in extras if isinstance(x, str)]
            if texts:
                description = texts[0]
                others = [x for x in extras if not isinstance(x, str)]
                annotation = Annotated[tuple([base, *others])] if others else base  # type: ignore[valid-type]
        default = ... if param.default is param.empty else param.default
        # description=None would override a Field(description=...) given inside Annotated
        info = FieldInfo(default=default) if description is None else \
            FieldInfo(default=default, description=description)
        fields[param.name] = (annotation, info)
    try:
        return create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    except Exception as e:
        raise ToolDefinitionError(f"tool {tool_name!r}: its parameters cannot become a schema ({e})") from e


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (its paragraphs, no sections), and parameter descriptions from Google, NumPy or
    Sphinx style docs (`docstring_parser`), each on one line."""
    import docstring_parser

    parsed = docstring_parser.parse(doc)
    summary = "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)
    return summary, {p.arg_name: " ".join((p.description or "").split()) for p in parsed.params}
