"""What a workflow is made of: units that run, and the `>>` / `|` arrangements of them.

A `Unit` is one node of the graph (a task, or a route, loop or fan-out holding its own
sub-graph); `Seq` and `Par` only arrange units and vanish when the workflow is compiled.
Every node is awaitable (`await home_town("Tony Blair")` runs it as a one-node workflow) and
runnable (`(a >> b).run(...)`), so the same objects serve plain async code and graphs.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Generator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_type_hints

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from ..models import Model, ModelSettings
    from .result import WorkflowResult
    from .workflow import Workflow

T = TypeVar("T")
U = TypeVar("U", bound="Unit[Any]")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

current_model: ContextVar[tuple[Model | None, ModelSettings | None]] = ContextVar(
    "agentflow_workflow_model", default=(None, None))
"""The model and settings of the workflow whose task is running here: a task awaited inside a
step uses them."""


class Kinds:
    """The units that nodes make but that are defined above this module: a plain function composed
    with `>>` or `|` becomes a `PythonTask` (task.py), `node.workflow()` a `Workflow` (workflow.py).
    Those modules fill these in as they load, and `agentflow.workflow` loads both, so nodes need not
    import what imports them."""

    python_task: Callable[[Callable[..., Any]], Unit[Any]]
    workflow: Callable[..., Workflow[Any]]


kinds = Kinds()


@dataclass(frozen=True)
class Param:
    """One input of a unit: bound by name, position, constant or run input (see graph.py)."""

    name: str
    annotation: Any = Any
    default: Any = MISSING

    @property
    def required(self) -> bool:
        return self.default is MISSING


class Node:
    """Anything `>>` (then) and `|` (at the same time) can arrange."""

    def __rshift__(self, other: Composable) -> Seq:
        return Seq((self, as_node(other)))

    def __rrshift__(self, other: Composable) -> Seq:
        return Seq((as_node(other), self))

    def __or__(self, other: Composable) -> Par:
        return Par((self, as_node(other)))

    def __ror__(self, other: Composable) -> Par:
        return Par((as_node(other), self))

    def workflow(self, **options: Any) -> Workflow[Any]:
        """This arrangement as a `Workflow` (options as for `Workflow(...)`)."""
        return kinds.workflow(self, **options)

    async def run(self, *state: Any, **inputs: Any) -> WorkflowResult[Any]:
        """Run with the default model and options: `(a >> b).run(topic="...")`."""
        return await self.workflow().run(*state, **inputs)

    def run_sync(self, *state: Any, **inputs: Any) -> WorkflowResult[Any]:
        return self.workflow().run_sync(*state, **inputs)

    def to_mermaid(self) -> str:
        return self.workflow().to_mermaid()

    def to_dot(self) -> str:
        return self.workflow().to_dot()


class Seq(Node):
    """`a >> b >> c`: each part starts when the previous one has finished."""

    def __init__(self, parts: tuple[Node, ...]) -> None:
        self.parts = tuple(p for part in parts for p in (part.parts if isinstance(part, Seq) else (part,)))


class Par(Node):
    """`a | b | c`: the parts run at the same time; what follows waits for all of them."""

    def __init__(self, parts: tuple[Node, ...]) -> None:
        self.parts = tuple(p for part in parts for p in (part.parts if isinstance(part, Par) else (part,)))


class Unit(Node, Generic[T]):
    """One node of the graph. `bound` holds constants given by calling it (`home_town("Tony Blair")`)."""

    kind: str = "unit"

    def __init__(self, name: str, params: tuple[Param, ...], output_type: Any, *, retries: int | None = None) -> None:
        self.name = name
        self.params = params
        self.output_type = output_type
        self.retries = retries
        self.bound: dict[str, Any] = {}

    def named(self: U, name: str) -> U:
        """A copy with another name: how two uses of one task are told apart (`result["blair"]`)."""
        clone = copy.copy(self)
        clone.name = name
        return clone

    def __call__(self: U, *args: Any, **kwargs: Any) -> U:
        """A copy with some parameters fixed to these values; the others still bind in the graph."""
        free = [p for p in self.params if p.name not in self.bound]
        if len(args) > len(free):
            raise ConfigError(f"task {self.name!r} takes {len(free)} more argument(s) "
                              f"({', '.join(p.name for p in free) or 'none'}), got {len(args)}")
        given = dict(zip((p.name for p in free), args, strict=False))
        for key, value in kwargs.items():
            if key in given or key in self.bound:
                raise ConfigError(f"task {self.name!r} got {key!r} twice")
            if key not in {p.name for p in free}:
                raise ConfigError(f"task {self.name!r} has no parameter {key!r}; its parameters: "
                                  f"{', '.join(p.name for p in self.params) or 'none'}")
            given[key] = value
        clone = copy.copy(self)
        clone.bound = {**self.bound, **given}
        return clone

    def __await__(self) -> Generator[Any, None, T]:
        """Run this one unit (all its parameters given) and return its output."""
        return self._await().__await__()

    async def _await(self) -> T:
        model, settings = current_model.get()
        return (await kinds.workflow(self, model=model, settings=settings).run()).output

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


Composable = Node | Callable[..., Any]


def as_node(value: Composable) -> Node:
    """A node, or a plain function made into a Python step so it can be composed directly."""
    if isinstance(value, Node):
        return value
    if callable(value):
        return kinds.python_task(value)
    raise ConfigError(f"{value!r} cannot be part of a workflow: use a task, a step, a plain function, "
                      "or route()/each()/loop()")


def signature_of(fn: Callable[..., Any], what: str) -> tuple[tuple[Param, ...], Any]:
    """The parameters and return annotation of `fn`, with string annotations resolved."""
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # a forward reference that cannot be resolved here: use the raw annotations
        hints = dict(getattr(fn, "__annotations__", {}))
    params: list[Param] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigError(f"{what} {getattr(fn, '__name__', fn)!r}: *args and **kwargs cannot be bound in a "
                              "workflow; name each input")
        params.append(Param(p.name, hints.get(p.name, Any), MISSING if p.default is p.empty else p.default))
    return tuple(params), hints.get("return", MISSING)


def bound_inputs(unit: Unit[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for one execution: constants, bound values, then defaults."""
    merged = {**values, **unit.bound}
    return {p.name: merged.get(p.name, p.default) for p in unit.params if p.name in merged or not p.required}
