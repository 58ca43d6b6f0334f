"""Units that hold sub-graphs: a route chooses one branch, `each` maps a task over a list, a
loop repeats its body until a condition or its bound. Their inputs are whatever their insides
need from outside, found when the workflow is compiled (graph.py)."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from ..core.errors import ConfigError
from .nodes import Composable, Node, Seq, Unit, as_node


class Switch(Unit[Any]):
    """The dispatch half of `route()`: reads the router's output and runs the branch it names."""

    kind = "route"

    def __init__(self, router: Unit[Any], branches: Mapping[Any, Node], default: Node | None,
                 key: Callable[[Any], Any] | None, name: str) -> None:
        super().__init__(name, (), Any)
        self.router, self.branches, self.default, self.key = router, dict(branches), default, key
        self.field = None if key else choice_field(router.output_type)
        self.check_keys()

    def check_keys(self) -> None:
        """With a Literal or Enum router output, every value needs a branch (or a default), and
        every branch must be reachable: both caught before anything runs."""
        choices = choices_of(self.router.output_type, self.field)
        if choices is None or self.key is not None:
            return
        keys = {k.value if isinstance(k, enum.Enum) else k for k in self.branches}
        if self.default is None and (missing := [c for c in choices if c not in keys]):
            raise ConfigError(f"route {self.name!r}: the router {self.router.name!r} can return {missing[0]!r}, which "
                              f"has no branch (branches: {', '.join(map(repr, keys))}). Add it or give default=")
        if stray := [k for k in keys if k not in choices]:
            raise ConfigError(f"route {self.name!r}: branch {stray[0]!r} can never be chosen; the router "
                              f"{self.router.name!r} returns one of {', '.join(map(repr, choices))}")

    def choose(self, value: Any) -> tuple[Any, Node]:
        """The branch key the router's output names, and its branch."""
        key = self.key(value) if self.key else getattr(value, self.field) if self.field else value
        for k in (key, key.value if isinstance(key, enum.Enum) else key):
            if isinstance(k, str | int | enum.Enum) and k in self.branches:
                return k, self.branches[k]
        if self.default is not None:
            return key, self.default
        raise ConfigError(f"route {self.name!r}: the router {self.router.name!r} chose {key!r}, which has no branch "
                          f"(branches: {', '.join(map(repr, self.branches))}); add it or give default=")


def choice_field(output: Any) -> str | None:
    """The field of a router's pydantic output that names the branch: its one Literal or Enum field."""
    if not (inspect.isclass(output) and issubclass(output, BaseModel)):
        return None
    fields = [n for n, f in output.model_fields.items() if choices_of(f.annotation, None) is not None]
    if len(fields) != 1:
        raise ConfigError(f"the router's output {output.__name__} needs exactly one Literal or Enum field to name "
                          f"the branch (it has {len(fields)}); or pass key=lambda out: ... to route()")
    return fields[0]


def choices_of(output: Any, field: str | None) -> list[Any] | None:
    if field is not None:
        output = output.model_fields[field].annotation
    if get_origin(output) is Literal:
        return list(get_args(output))
    if inspect.isclass(output) and issubclass(output, enum.Enum):
        return [m.value for m in output]
    return None


def route(router: Unit[Any], branches: Mapping[Any, Composable], *, default: Composable | None = None,
          key: Callable[[Any], Any] | None = None, name: str = "route") -> Seq:
    """`router`, then the branch its output names. The output picks the branch directly (a str,
    Literal or Enum), through a pydantic output's one Literal/Enum field, or through `key=`.
    Branches see the router's output by its name, and the run's inputs;
    the route's output (under `name`) is the chosen branch's."""
    if not branches:
        raise ConfigError(f"route {name!r} has no branches")
    switch = Switch(router, {k: as_node(v) for k, v in branches.items()},
                    None if default is None else as_node(default), key, name)
    return Seq((router, switch))


class Each(Unit[list[Any]]):
    """`each(worker)`: the worker once per item of a list, concurrently; the output is the list of
    its outputs in the items' order."""

    kind = "each"

    def __init__(self, worker: Unit[Any], over: str | None, item: str | None, name: str | None) -> None:
        head, *path = (over or "items").split(".")
        super().__init__(name or worker.name, (), list[worker.output_type])
        self.worker, self.over, self.path, self.item = worker, head, tuple(path), item


def each(worker: Composable, *, over: str | None = None, item: str | None = None, name: str | None = None) -> Each:
    """Map `worker` over a list (orchestrator-workers, bulk classification). `over` names where the
    list comes from: a task or run input, with an attribute path for a field of a structured
    output (`over="decompose.subtasks"`); without it, the one task before it. The item goes to
    the worker's first free parameter, or to `item=`."""
    unit = as_node(worker)
    if not isinstance(unit, Unit):
        raise ConfigError("each() takes one task; to map a chain over a list, wrap it: each(Workflow(a >> b))")
    return Each(unit, over, item, name)


class Loop(Unit[Any]):
    """`loop(body, until=..., max_iterations=N)`: runs `body` again and again. Inside the body a task
    may take the output of a task that runs after it: that is the previous iteration's value
    (its default on the first). Every iteration's outputs are kept in `result.attempts`."""

    kind = "loop"

    def __init__(self, body: Node, until: Callable[[Any], bool] | None, max_iterations: int, name: str) -> None:
        if max_iterations < 1:
            raise ConfigError(f"loop {name!r}: max_iterations must be at least 1, got {max_iterations}")
        super().__init__(name, (), Any)
        self.body, self.until, self.max_iterations = body, until, max_iterations


def loop(body: Composable, *, until: Callable[[Any], bool] | None = None, max_iterations: int = 3,
         name: str = "loop") -> Loop:
    """Repeat `body` (generate >> evaluate, Reflexion) until `until(last output)` is true or
    `max_iterations` have run. The loop's output is the body's last output; the outputs of the
    tasks inside stay reachable downstream by their names (their last values). An input of the
    body whose type is the body's output type (a typed state) takes the last output from the
    second iteration on."""
    return Loop(as_node(body), until, max_iterations, name)
