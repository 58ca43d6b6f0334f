"""What a durable run can run: agents, supervisors and workflows, each under a stable name.

A run records the name of its target, not a function path; the process that resumes it must
have registered the same name. The name is yours: renaming a function does not strand a run.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..agent.loop import Agent
from ..core.errors import ConfigError, partial_of
from ..core.messages import Message
from ..core.result import RunResult
from ..teams.planning import Plan
from ..teams.supervisor import Supervisor
from ..workflow.result import WorkflowError, WorkflowResult
from ..workflow.workflow import Workflow
from . import codec

Target = Agent[Any] | Supervisor[Any] | Workflow[Any]


class RunFailed(Exception):
    """Carries what a failed run left (as JSON) into the journal; DBOS stores `data` with the error."""

    def __init__(self, message: str, name: str, data: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.name, self.data = name, data


class Entry:
    """One registered target: how to run it from a JSON payload and decode what it returns."""

    def __init__(self, name: str, target: Target) -> None:
        self.name, self.target = name, target

    @property
    def kind(self) -> str:
        return "workflow" if isinstance(self.target, Workflow) else "agent"

    def payload(self, task: str | None, inputs: dict[str, Any], history: list[Message] | None,
                plan: Plan | None) -> dict[str, Any]:
        """The run's input as JSON, checked now so a bad call fails before anything is stored."""
        t = self.target
        if isinstance(t, Workflow):
            if task is not None or history or plan is not None:
                raise ConfigError(f"{self.name!r} is a workflow: give its inputs by name, not a task")
            return {"inputs": codec.jsonable(t._inputs((), inputs))}  # pyright: ignore[reportPrivateUsage]
        if task is None or inputs:
            raise ConfigError(f"{self.name!r} is an agent: give it a task (a string), not inputs")
        if plan is not None and not isinstance(t, Supervisor):
            raise ConfigError(f"{self.name!r} is not a supervisor: only a plan-mode supervisor takes a plan")
        return {"task": task, "history": [m.model_dump(mode="json") for m in history or ()],
                "plan": None if plan is None else plan.model_dump(mode="json")}

    async def execute(self, payload: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        t = self.target
        try:
            if isinstance(t, Workflow):
                inputs = self.typed_inputs(payload["inputs"])
                if previous is None:
                    return codec.encode_workflow(await t.run(**inputs))
                before = self.decode(previous)
                assert isinstance(before, WorkflowResult)
                return codec.encode_workflow(await t.rerun(before, payload.get("changes") or {}, **inputs))
            history = [Message.model_validate(m) for m in payload.get("history") or ()]
            if isinstance(t, Supervisor):
                plan = None if payload.get("plan") is None else Plan.model_validate(payload["plan"])
                result = await t.run(payload["task"], history=history or None, plan=plan)
            else:
                result = await t.run(payload["task"], history=history or None)
            return codec.encode_run(result)
        except WorkflowError as e:
            raise RunFailed(str(e), type(e).__name__, codec.encode_workflow(e.result)) from e
        except Exception as e:
            partial = partial_of(e)
            data = codec.encode_run(partial) if isinstance(partial, RunResult) else None
            raise RunFailed(f"{type(e).__name__}: {e}", type(e).__name__, data) from e

    def check_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Edited task outputs, checked against the tasks' types now (not when the re-run starts)."""
        assert isinstance(self.target, Workflow)
        nodes = self.target.graph.nodes
        for name, value in changes.items():
            if name not in nodes:
                raise ConfigError(f"{name!r} is not a task of workflow {self.name!r} (tasks: {', '.join(nodes)})")
            try:
                TypeAdapter(nodes[name].output_type).validate_python(value)
            except ValidationError as e:
                raise ConfigError(f"the new output of {name!r} is not a valid {nodes[name].output_type!r}: "
                                  f"{e.errors()[0]['msg']}") from None
            except Exception:  # a type pydantic cannot check: taken as given
                pass
        return codec.jsonable(changes)

    def typed_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        spec = self.target.inputs if isinstance(self.target, Workflow) else {}
        return {k: codec.typed(spec[k].annotation if k in spec else None, v) for k, v in inputs.items()}

    def decode(self, data: dict[str, Any]) -> RunResult[Any] | WorkflowResult[Any]:
        t = self.target
        if isinstance(t, Workflow):
            g = t.graph
            types = {n: u.output_type for n, u in g.nodes.items()}
            out = g.nodes[g.sinks[0]].output_type if len(g.sinks) == 1 else None
            return codec.decode_workflow(data, types, {k: p.annotation for k, p in g.inputs.items()}, out)
        return codec.decode_run(data, t.output.type if isinstance(t, Agent) else t.output)


class Registry:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, target: Target, name: str | None = None, *, replace: bool = False) -> str:
        if not isinstance(target, (Agent, Supervisor, Workflow)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigError(f"cannot run {target!r} durably: register an Agent, a Supervisor or a Workflow")
        name = name or target.name
        known = self.entries.get(name)
        if known is not None and known.target is not target and not replace:
            raise ConfigError(f"two targets are registered as {name!r}: pass name= to tell them apart "
                              "(a run finds its target by this name when it resumes)")
        self.entries[name] = Entry(name, target)
        return name

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(f"no target is registered as {name!r} in this process (registered: "
                              f"{', '.join(self.entries) or 'none'}). Fix: durable.register(<agent or "
                              f"workflow>, name={name!r}) before launch()") from None

    def find(self, target: Target | str) -> Entry:
        if isinstance(target, str):
            return self.get(target)
        for entry in self.entries.values():
            if entry.target is target:
                return entry
        return self.get(self.add(target))


registry = Registry()


def register(target: Target, name: str | None = None, *, replace: bool = False) -> str:
    """Make `target` runnable durably under `name` (default: its own name); returns the name.
    `replace=True` lets a new definition take over a name (pending runs then resume with it)."""
    return registry.add(target, name, replace=replace)
