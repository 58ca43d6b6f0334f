"""An MCP server's tools as agentflow tools: schemas made strict, arguments checked before they
are sent, results turned into observations.

The schema a server states is converted the way `@tool` schemas are (`core/schema.py`), so the
same tool works in OpenAI strict mode and on Anthropic. What strict form cannot say (a free-form
object, `patternProperties`, conditionals) is refused by name when the tools are listed, not
discovered at the first call; `strict=False` passes such a schema on as the server states it.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..core.errors import ConfigError, ToolDefinitionError, all_at_once, did_you_mean
from ..core.schema import is_nullable, strict_json_schema
from ..core.tool import TOOL_NAME, Tool, ToolArgumentsError, ToolError, ToolTimeout, arguments_object
from ..models.base import ToolSpec
from .connection import MCPConnection, MCPServerGone, ServerSpec, connection_to

log = logging.getLogger("agentflow.mcp")
DEFAULT_TIMEOUT = 60.0
_UNSTRICT = ("patternProperties", "unevaluatedProperties", "propertyNames", "dependentSchemas",
             "dependentRequired", "if", "then", "else")


class MCPTool(Tool[Any]):
    """One tool of an MCP server. Calling it sends `tools/call` over the process's connection."""

    def __init__(self, conn: MCPConnection, info: Any, *, name: str, requires_approval: bool, timeout: float | None,
                 strict: bool) -> None:
        self.connection, self.remote_name = conn, info.name
        self.name = name
        self.description = info.description or info.title or ""
        self.requires_approval, self.approval_timeout, self.approve_on_timeout = requires_approval, None, False
        self.timeout = timeout
        self.is_async = True
        self.input_schema: dict[str, Any] = dict(info.input_schema or {"type": "object", "properties": {}})
        parameters = strict_json_schema(self.input_schema) if strict else self.input_schema
        self.spec = ToolSpec(name=name, description=self.description, parameters=parameters)
        self.fn = self._send

    def validate(self, arguments: str | dict[str, Any]) -> dict[str, Any]:
        """The arguments checked against the schema the server stated (the strict form's `null`s for
        optional fields left out), or `ToolArgumentsError` saying what to fix."""
        value = _without_optional_nulls(arguments_object(arguments), self.input_schema)
        known = self.input_schema.get("properties") or {}
        if unknown := sorted(set(value) - set(known)) if self.input_schema.get("additionalProperties") is None else []:
            raise ToolArgumentsError(f"unknown field(s) {', '.join(unknown)}; the fields are "
                                     f"{', '.join(sorted(known)) or 'none'}")
        from jsonschema import Draft202012Validator  # the mcp SDK's own dependency

        errors = sorted(Draft202012Validator(self.input_schema).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            raise ToolArgumentsError("; ".join(f"{'.'.join(map(str, e.path)) or '(arguments)'}: {e.message}"
                                               for e in errors[:5]))
        return value

    async def call(self, arguments: str | dict[str, Any]) -> Any:
        return await self._send(**self.validate(arguments))

    async def _send(self, **arguments: Any) -> Any:
        try:
            result = await self.connection.call(self.remote_name, arguments, self.timeout)
        except TimeoutError as e:
            raise ToolTimeout(str(e)) from None
        except MCPServerGone as e:
            raise ToolError(str(e)) from None
        return observation(result)

    def __repr__(self) -> str:
        return f"<MCPTool {self.name} of {self.connection.spec.label}>"


def observation(result: Any) -> Any:
    """What the model reads of a `CallToolResult`: its text; structured content when it sent no text;
    a note for an image, audio or a resource link. An error result raises `ToolError` with its text."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(block.data) * 3 // 4
            parts.append(f"[{kind} of type {block.mime_type}, {size:,} bytes, not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}{f' ({block.name})' if block.name else ''}]")
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            parts.append(text if text is not None else f"[resource {block.resource.uri}, binary, not shown]")
    text = "\n".join(parts)
    if result.is_error:
        raise ToolError(text or "the tool failed and said nothing more")
    if not text and result.structured_content is not None:
        return result.structured_content
    return text


def _without_optional_nulls(value: Any, schema: Mapping[str, Any]) -> Any:
    """Strict form makes every optional field nullable and required; a `null` there means "left out"."""
    if not isinstance(value, dict) or not isinstance(schema.get("properties"), dict):
        return value
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = properties.get(key, {})
        if item is None and key not in required and not is_nullable(sub):
            continue
        out[key] = _without_optional_nulls(item, sub) if isinstance(sub, dict) else item
    return out


def unstrict_parts(schema: Any, where: str = "") -> list[str]:
    """Where `schema` says what strict form cannot: free-form objects, and the keywords in `_UNSTRICT`."""
    if not isinstance(schema, dict):
        return []
    found = [f"{where or '(root)'}: {k}" for k in _UNSTRICT if k in schema]
    extra = schema.get("additionalProperties")
    if extra is True or (schema.get("type") == "object" and "properties" not in schema and where and extra is None):
        found.append(f"{where or '(root)'}: a free-form object (any keys)")
    for name, sub in (schema.get("properties") or {}).items():
        found += unstrict_parts(sub, f"{where}.{name}" if where else name)
    for key in ("items", "additionalProperties", "not"):
        found += unstrict_parts(schema.get(key), f"{where}[]" if key == "items" else f"{where}.{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or []:
            found += unstrict_parts(sub, where)
    for name, sub in (schema.get("$defs") or {}).items():
        found += unstrict_parts(sub, f"$defs.{name}")
    return found


def _local_name(remote: str, prefix: str) -> str:
    name = prefix + re.sub(r"[^a-zA-Z0-9_-]", "_", remote)
    return name[:64]


def mcp_tools(server: str, *, include: Sequence[str] | None = None, exclude: Sequence[str] = (),
              requires_approval: bool | Collection[str] = False, prefix: str = "",
              timeout: float | None = DEFAULT_TIMEOUT, strict: bool = True, skip_unstrict: bool = False,
              env: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
              cwd: str | None = None) -> list[Tool[Any]]:
    """The tools an MCP server offers, as agentflow tools: `Agent(..., tools=mcp_tools("stdio:python -m srv"))`.

    `server`: `stdio:COMMAND ARGS`, `http://HOST:PORT/mcp` (streamable HTTP) or `sse:http://HOST:PORT/sse`.
    `include`/`exclude`: tool names or glob patterns (`"read_*"`). `requires_approval`: True for every
    tool, or the names that need a person's yes. `prefix` goes before each name (two servers with a
    tool of the same name). A tool whose schema strict form cannot state is an error, or with
    `skip_unstrict` left out with a warning; `strict=False` sends every schema as the server states
    it. `timeout`: seconds per call (a slow server's call becomes an observation). `env` adds
    variables to a stdio server's (which otherwise gets only PATH, HOME and the like, no keys);
    `headers` go with every HTTP request. The connection is the process's, shared by every
    agent and run, opened here and closed at exit (see connection.py for why)."""
    if importlib.util.find_spec("mcp") is None:
        raise ConfigError("MCP tools need the mcp SDK, which is not installed. Fix: pip install 'agentflow[mcp]'")
    spec = ServerSpec.parse(server, env=env, headers=headers, cwd=cwd)
    conn = connection_to(spec)
    try:
        offered = conn.list_tools()
    except MCPServerGone as e:
        raise ConfigError(f"{e}. Fix: check that the server starts on its own ({spec.label})") from None
    names = [t.name for t in offered]
    problems: list[str] = []
    for pattern in [*(include or []), *exclude]:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            problems.append(f"{pattern!r} matches no tool of the MCP server {spec.label}"
                            f"{did_you_mean(pattern, names)}; it offers: {', '.join(names) or 'none'}")
    approve_all = requires_approval is True
    approve: set[str] = set() if isinstance(requires_approval, bool) else set(requires_approval)
    for name in sorted(approve - set(names)):
        problems.append(f"requires_approval names {name!r}, which the MCP server {spec.label} does not offer"
                        f"{did_you_mean(name, names)}")
    chosen = [t for t in offered if (include is None or any(fnmatch.fnmatchcase(t.name, p) for p in include))
              and not any(fnmatch.fnmatchcase(t.name, p) for p in exclude)]
    tools: list[Tool[Any]] = []
    taken: dict[str, str] = {}
    for info in chosen:
        local = _local_name(info.name, prefix)
        if not TOOL_NAME.fullmatch(local) or local in taken:
            why = f"the same name as {taken[local]!r}" if local in taken else "no name a provider accepts"
            problems.append(f"the MCP tool {info.name!r} has {why}, as {local!r}. Fix: exclude=[{info.name!r}]")
            continue
        taken[local] = info.name
        if strict and (parts := unstrict_parts(info.input_schema or {})):
            if skip_unstrict:
                log.warning("left out the MCP tool %r of %s: strict mode cannot state its schema (%s)", info.name,
                            spec.label, "; ".join(parts))
                continue
            problems.append(f"the MCP tool {info.name!r} has a schema strict mode cannot state ({'; '.join(parts)}). "
                            f"Fix: exclude=[{info.name!r}], or strict=False to send its schema as the server states it")
            continue
        tools.append(MCPTool(conn, info, name=local, requires_approval=approve_all or info.name in approve,
                             timeout=timeout, strict=strict))
    if problems:
        raise ToolDefinitionError(all_at_once(problems))
    return tools
