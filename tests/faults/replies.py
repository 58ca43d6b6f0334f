"""What the fault server answers when it injects no fault: a reply any agentflow run can act on.

It reads the request as a model would, without understanding it: the first time, it calls the
tools it is offered (two at once when there are two); after a tool result, it calls `finish` with
an instance of `finish`'s schema; offered no tools, it writes text (JSON when a schema is asked
for). So every kind of run (agents, supervisors in every mode, workflows, conversations) moves on
and ends, and every fault lands somewhere a real model's reply would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TEXT = "chaos says hello"


@dataclass
class Action:
    text: str | None = None
    calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list[tuple[str, "dict[str, Any] | str"]])


@dataclass
class Request:
    """The parts of an OpenAI or Anthropic request the replies depend on."""

    wire: str                              # "openai" or "anthropic"
    model: str
    stream: bool
    tools: dict[str, dict[str, Any]]       # name -> JSON schema of its arguments
    forced: str | None                     # the tool `tool_choice` names
    output: dict[str, Any] | None          # OpenAI's response_format schema
    called: bool                           # some tool was called earlier in the conversation

    @classmethod
    def read(cls, path: str, body: dict[str, Any]) -> Request:
        anthropic = path.endswith("/messages")
        tools: dict[str, dict[str, Any]] = {}
        for t in body.get("tools") or ():
            if anthropic:
                tools[t["name"]] = t.get("input_schema") or {}
            else:
                tools[t["function"]["name"]] = t["function"].get("parameters") or {}
        choice = body.get("tool_choice")
        forced = None
        if isinstance(choice, dict):
            forced = choice.get("name") or (choice.get("function") or {}).get("name")
        output = None
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            output = fmt["json_schema"]["schema"]
        messages = body.get("messages") or []
        if anthropic:
            called = any(isinstance(b, dict) and b.get("type") == "tool_use"
                         for m in messages if m.get("role") == "assistant" for b in m.get("content") or ())
        else:
            called = any(m.get("tool_calls") for m in messages if m.get("role") == "assistant")
        return cls("anthropic" if anthropic else "openai", str(body.get("model")), bool(body.get("stream")),
                   tools, forced, output, called)


def honest(request: Request) -> Action:
    tools = request.tools
    if request.forced in tools:
        return Action(calls=[(request.forced, instance(tools[request.forced]))])
    others = [name for name in tools if name != "finish"]
    if others and not request.called:
        return Action(calls=[(name, instance(tools[name])) for name in others[:2]])
    if "finish" in tools:
        return Action(calls=[("finish", instance(tools["finish"]))])
    if request.output is not None:
        return Action(text=json.dumps(instance(request.output)))
    return Action(text=TEXT)


def instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A value valid for a JSON schema of the kinds pydantic writes. Optional properties are left
    out, nullable ones are null, and lists of plain values are empty (ids in them would have to
    name something that exists)."""
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = schema["anyOf"]
        if any(o.get("type") == "null" for o in options):
            return None
        return instance(options[0], defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties: dict[str, Any] = schema.get("properties", {})
        return {name: instance(properties[name], defs) for name in schema.get("required", ()) if name in properties}
    if kind == "array":
        items = schema.get("items", {})
        resolved = defs.get(items["$ref"].rsplit("/", 1)[-1], {}) if "$ref" in items else items
        return [instance(items, defs)] if resolved.get("type") == "object" else []
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return TEXT
