"""Writes docs/reference.md from the code: the fields of every record users read, every event, the
tools a supervisor's model is offered in each mode, and the arguments of the objects users make.

    python scripts/reference.py            # rewrite docs/reference.md
    python scripts/reference.py --check    # exit 1 if docs/reference.md is not what the code says

The delegation tools are not written down by hand: a supervisor of two agents runs once in each
mode on a model that records what it is offered, and the page lists that.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

import agentflow
from agentflow import durable
from agentflow.core.messages import Message, ModelResponse, ToolCall, Usage
from agentflow.core.result import ModelStep, RunResult, ToolStep
from agentflow.models import RequestInfo
from agentflow.workflow import TaskRecord, Workflow, WorkflowResult

OUT = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def type_name(annotation: Any) -> str:
    """An annotation as a reader writes it: `str | None`, `'finish' | 'error'`, `list[Message]`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(dict.fromkeys(type_name(a) for a in args))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None and args:
        return f"{type_name(origin)}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, typing.TypeVar):
        return annotation.__name__
    if isinstance(annotation, type):
        return annotation.__name__
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return re.sub(r"\b(?:agentflow|typing|collections\.abc|pydantic|datetime)\.(?:[a-z_]+\.)*", "", str(text))


def doc(obj: Any) -> str:
    return " ".join((inspect.getdoc(obj) or "").split())


def field_rows(cls: type[Any]) -> list[tuple[str, str, str]]:
    """(name, type, default or description) for a pydantic model or a dataclass."""
    rows: list[tuple[str, str, str]] = []
    if issubclass(cls, BaseModel):
        hints = typing.get_type_hints(cls)
        for name, f in cls.model_fields.items():
            if f.exclude:
                continue
            default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
            note = f" — {f.description}" if f.description else ""
            rows.append((name, type_name(hints.get(name, f.annotation)), default + note))
        return rows
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        rows.append((f.name, type_name(hints.get(f.name, f.type)), default))
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def record(cls: type[Any], title: str | None = None) -> str:
    lines = [f"### `{title or cls.__name__}`", "", doc(cls), "", "| field | type | default |", "|---|---|---|"]
    lines += [f"| `{n}` | `{cell(t)}` | {cell(d)} |" for n, t, d in field_rows(cls)]
    props = [n for n, v in vars(cls).items() if isinstance(v, property) and not n.startswith("_")]
    if props:
        lines += ["", "Properties: " + ", ".join(f"`{p}`" for p in props) + "."]
    return "\n".join(lines) + "\n"


def signature(fn: Callable[..., Any], name: str) -> str:
    """`name(...) -> ...` as written in Python, a parameter a line when it is long."""
    sig = inspect.signature(fn)
    shown: list[str] = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and "*" not in shown and not any(s.startswith("*") for s in shown):
            shown.append("*")
        text = p.name if p.kind is not p.VAR_KEYWORD else f"**{p.name}"
        if p.annotation is not p.empty:
            text += f": {type_name(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        shown.append(text)
    ret = "" if sig.return_annotation is sig.empty else f" -> {type_name(sig.return_annotation)}"
    line = f"{name}({', '.join(shown)}){ret}"
    return line if len(line) <= 100 else f"{name}(\n" + "".join(f"    {s},\n" for s in shown) + f"){ret}"


def maker(obj: Any, name: str) -> str:
    init = obj.__init__ if inspect.isclass(obj) else obj
    return f"### `{name}`\n\n```python\n{signature(init, name)}\n```\n\n{doc(obj)}\n"


# -- the tools a supervisor's model is offered, seen by a model that records them -----------------------


class _Seen(Exception):
    pass


def offered(mode: Literal["route", "plan", "worklist"], **options: Any) -> list[dict[str, Any]]:
    """The tool specs of the first request a supervisor in `mode` sends its model."""
    seen: list[dict[str, Any]] = []

    def record_and_stop(info: RequestInfo) -> Any:
        seen.extend({"name": t.name, "description": t.description, "parameters": t.parameters} for t in info.tools)
        raise _Seen

    researcher = agentflow.Agent("researcher", "Finds facts.", model=agentflow.FunctionModel(record_and_stop))
    writer = agentflow.Agent("writer", "Writes text.", model=agentflow.FunctionModel(record_and_stop))
    boss = agentflow.Supervisor([researcher, writer], mode=mode, model=agentflow.FunctionModel(record_and_stop),
                                **options)
    try:
        asyncio.run(boss.run("a task"))
    except Exception as e:  # the model stops the run once it has seen the request
        if not isinstance(e, _Seen) and not isinstance(e.__cause__, _Seen):
            raise
    return seen


def schema_kind(schema: dict[str, Any]) -> tuple[str, bool]:
    """A parameter's JSON type as words, and whether it may be null (left out: its default)."""
    options = schema.get("anyOf", [schema])
    kinds = [o.get("type") or ("one of " + ", ".join(repr(v) for v in o["enum"]) if "enum" in o else "object")
             for o in options]
    return " or ".join(k for k in kinds if k != "null"), "null" in kinds


def tool_line(spec: dict[str, Any]) -> str:
    props: dict[str, Any] = spec["parameters"].get("properties", {})
    lines = [f"- **`{spec['name']}`**: {' '.join(spec['description'].split())}"]
    for name, schema in props.items():
        kind, nullable = schema_kind(schema)
        about = " ".join(str(schema.get("description", "")).split())
        lines.append(f"  - `{name}` ({kind}{', may be null' if nullable else ''}){': ' + about if about else ''}")
    return "\n".join(lines)


def delegation() -> str:
    out = ["## The tools a supervisor's model is offered", "",
           "What the model of `Supervisor([researcher, writer], mode=...)` sees in its first request, recorded by "
           "running one (so this list is the code's). Every task agent is a tool named after it; `finish` ends "
           "the run with its answer.", ""]
    modes: list[tuple[Literal["route", "plan", "worklist"], dict[str, Any], str]] = [
        ("route", {}, "delegate as needed"),
        ("route", {"library": [agentflow.tool(_lookup)]}, "with a tool library: agents made on the fly"),
        ("plan", {}, "the planning call (execution then runs the plan's steps)"),
        ("worklist", {}, "a prioritised task list")]
    for mode, options, about in modes:
        out += [f"### `mode=\"{mode}\"` — {about}", ""]
        out += [tool_line(s) for s in offered(mode, **options)] + [""]
    return "\n".join(out)


def _lookup(key: str) -> str:
    """Look a key up."""
    return key


def page() -> str:
    from agentflow import ConversationResult, Plan, PlanStep, Review, Verdict, WorkItem
    from agentflow.core.events import RunFinished, RunStarted, TextChunk
    from agentflow.core.limits import Limits
    from agentflow.runtime.requests import HumanAnswered, HumanAsked, HumanReply, HumanRequest
    from agentflow.teams.conversation import SpeakerChosen, Turn
    from agentflow.teams.planning import PlanMade, PlanStepChanged
    from agentflow.teams.supervisor import Session
    from agentflow.teams.worklist import WorklistChanged
    from agentflow.workflow import TaskFinished, TaskStarted

    parts = ["# agentflow reference", "",
             "Generated from the code by `python scripts/reference.py` (a test fails when this page and the code "
             "disagree). The README shows how the pieces fit; this page lists what each one holds.", "",
             "## What runs return", "", f"Every result is an `Outcome`: {doc(agentflow.Outcome)}", ""]
    parts += [record(c) for c in (RunResult, ModelStep, ToolStep, Usage, Message, ToolCall, ModelResponse,
                                  WorkflowResult, TaskRecord, ConversationResult, Verdict, Plan, PlanStep, Review,
                                  WorkItem, HumanRequest, HumanReply)]
    parts += ["## Events", "",
              "Every `stream()` yields these (and `agentflow serve` sends them as Server-Sent Events, `event:` "
              "being the `kind`). Each names the path of the agent it comes from in `agent` (`boss/researcher`).",
              ""]
    parts += [record(c) for c in (RunStarted, RunFinished, TextChunk, ModelStep, ToolStep, PlanMade,
                                  PlanStepChanged, WorklistChanged, TaskStarted, TaskFinished, Turn, SpeakerChosen,
                                  HumanAsked, HumanAnswered)]
    parts += [delegation()]
    parts += ["## Sessions", "",
              "```python",
              signature(Session.send, "Session.send"), signature(Session.stream, "Session.stream"),
              signature(durable.DurableSession.send, "DurableSession.send"),
              signature(durable.DurableSession.history, "DurableSession.history"),
              "```", "",
              f"`Session.send`: {doc(Session.send)} `Session`: {doc(Session)}", "",
              f"`DurableSession`: {doc(durable.DurableSession)}", ""]
    parts += ["## What users make", ""]
    parts += [maker(agentflow.Agent, "Agent"), maker(agentflow.Supervisor, "Supervisor"),
              maker(Workflow, "Workflow"), maker(Limits, "Limits"), maker(agentflow.UserProxy, "UserProxy"),
              maker(agentflow.Conversation, "Conversation"), maker(agentflow.GroupChat, "GroupChat")]
    parts += ["## Durable runs", "",
              maker(durable.launch, "durable.launch"), maker(durable.connect, "durable.connect"),
              f"URL forms: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (the default is "
              f"`{durable.DEFAULT_URL}`), `postgresql://user:password@host:5432/db` (`postgres://` is taken as "
              "`postgresql://`). Anything else is refused with the forms it takes.", "",
              record(durable.RunInfo), record(durable.StepRecord),
              "### `DurableRun` methods", ""]
    for name, fn in inspect.getmembers(durable.DurableRun, inspect.isfunction):
        if not name.startswith("_"):
            parts.append(f"- `{signature(fn, name)}`: {doc(fn)}")
    parts += ["", "## The REST API", "",
              "`agentflow serve` describes itself: `GET /openapi.json` (and `/docs`) lists every endpoint with "
              "its request and response schemas, each served target's run input included. The README's REST API "
              "section has the table and a curl session.", ""]
    return "\n".join(parts)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    text = page()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
