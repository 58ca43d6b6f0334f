"""What a server offers: each target's kind, its input and output schemas, and its run request.

Every target gets its own request model (`{"target": "trip", "input": {...}}`), joined into one
union on `target`, so `/openapi.json` states exactly what each target takes and pydantic checks
the input before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from ..agent.loop import Agent
from ..core.errors import ConfigError
from ..durable.registry import Target
from ..teams.supervisor import Supervisor
from ..workflow.workflow import Workflow

Kind = Literal["agent", "supervisor", "workflow"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ID_FIELD = Field(default=None, pattern=ID_PATTERN,
                 description="Your id for the run (letters, digits, `._:-`): the same id again is the same run")


def _schema(annotation: Any) -> dict[str, Any]:
    try:
        return TypeAdapter(annotation).json_schema()
    except Exception:  # a type pydantic cannot describe: any JSON
        return {}


def _checkable(annotation: Any) -> Any:
    """`annotation` if pydantic can validate JSON against it, else Any (taken as given)."""
    return annotation if _schema(annotation) else Any


class Served:
    """One target as the API shows it."""

    def __init__(self, name: str, target: Target) -> None:
        self.name, self.target = name, target
        if isinstance(target, Workflow):
            self.kind: Kind = "workflow"
            g = target.graph
            self.output_type: Any = g.nodes[g.sinks[0]].output_type if len(g.sinks) == 1 else dict[str, Any]
            fields: dict[str, Any] = {k: (_checkable(p.annotation), ... if p.required else p.default)
                                      for k, p in target.inputs.items()}
            self.input_type: Any = create_model(f"{_title(name)}Input", __config__=ConfigDict(extra="forbid"),
                                                **fields)
            self.description = f"workflow of {len(g.nodes)} tasks: {', '.join(g.nodes)}"
        else:
            self.kind = "supervisor" if isinstance(target, Supervisor) else "agent"
            self.output_type = target.output.type if isinstance(target, Agent) else (target.output or str)
            self.input_type = Annotated[str, Field(min_length=1, description="the task")]
            self.description = _description(target)

    def input_schema(self) -> dict[str, Any]:
        return _schema(self.input_type)

    def output_schema(self) -> dict[str, Any]:
        return _schema(self.output_type)

    def request_model(self) -> type[BaseModel]:
        """`{"target": <name>, "input": <this target's input>, "id"?: ...}`."""
        optional = self.kind == "workflow" and not any(p.required for p in self.target.inputs.values())  # type: ignore[union-attr]
        given: Any = (self.input_type, self.input_type() if optional else ...)
        return create_model(f"Run{_title(self.name)}", __config__=ConfigDict(extra="forbid"),
                            target=(Literal[self.name], ...), input=given,  # type: ignore[valid-type]
                            id=(str | None, ID_FIELD))

    def arguments(self, given: Any) -> tuple[str | None, dict[str, Any]]:
        """The validated `input` as `(task, inputs)` for `Runtime.start`."""
        if isinstance(given, BaseModel):  # only what was given: the workflow applies its own defaults
            return None, {k: getattr(given, k) for k in given.model_fields_set}
        return str(given), {}


def _title(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part) or "Target"


def _description(target: Agent[Any] | Supervisor[Any]) -> str:
    if isinstance(target, Agent):
        return target.description
    return f"supervisor ({target.mode}) of {', '.join(target.agents) or 'agents made on the fly'}"


def served(targets: Sequence[Target] | Mapping[str, Target]) -> dict[str, Served]:
    """The targets by name (their own names, or the mapping's keys)."""
    items = list(targets.items()) if isinstance(targets, Mapping) else [(t.name, t) for t in targets]
    if not items:
        raise ConfigError("there is nothing to serve: give at least one agent, supervisor or workflow")
    out: dict[str, Served] = {}
    for name, target in items:
        if not isinstance(target, (Agent, Supervisor, Workflow)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigError(f"cannot serve {target!r}: serve an Agent, a Supervisor or a Workflow")
        known = out.get(name)
        if known is not None and known.target is not target:
            raise ConfigError(f"two targets are called {name!r}: give one another name (name=...) so each has "
                              "its own URL and its runs find it when they resume")
        out[name] = Served(name, target)
    return out
