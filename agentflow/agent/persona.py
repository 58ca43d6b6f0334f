"""Personas: Markdown files with YAML front matter that become task agents.

```
---
name: researcher
role: a careful researcher
goal: find facts and say where they come from
backstory: You worked as a fact-checker for years.
tools: [fetch, read_files, calculator]
mcp:                             # optional: MCP servers whose tools it gets too
  - stdio:python -m my_server
  - {server: "http://127.0.0.1:8000/mcp", include: [search], requires_approval: true}
model: openai:gpt-4o-mini        # optional
output:                          # optional: the fields of a typed result
  answer: str
  sources: list[str]
---
Extra instructions, in Markdown.
```

The shipped set lives in `agentflow/personas`; users add theirs from directories (`dirs=` or
`$AGENTFLOW_PERSONAS`, separated by the path separator); a later file of the same name wins.
Every mistake in a file is reported with the file, the line and the field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..core.errors import ConfigError, all_at_once, did_you_mean
from ..core.tool import TOOL_NAME
from ..models import Model, parse_model_string
from .loop import Agent

ENV = "AGENTFLOW_PERSONAS"
REQUIRED = ("name", "role", "goal")
FIELDS = (*REQUIRED, "backstory", "tools", "mcp", "model", "output", "max_steps")
MCP_FIELDS = ("server", "include", "exclude", "requires_approval", "prefix", "timeout")
_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool}


class PersonaError(ConfigError):
    """A persona file is wrong; the message names the file, the line and the field of each mistake
    (`line` and `field` are the first one's)."""

    def __init__(self, path: Path | str, line: int | None, field: str | None, problem: str) -> None:
        super().__init__(_where(path, line, field) + problem)
        self.path, self.line, self.field = Path(path), line, field

    @classmethod
    def of(cls, path: Path | str, problems: list[tuple[int | None, str | None, str]]) -> PersonaError:
        line, field, problem = problems[0]
        error = cls(path, line, field, problem)
        if len(problems) > 1:
            error.args = (all_at_once([_where(path, *p[:2]) + p[2] for p in problems]),)
        return error


def _where(path: Path | str, line: int | None, field: str | None) -> str:
    return f"{f'{path}:{line}' if line else path}: {f'{field}: ' if field else ''}"


class MCPServerEntry(BaseModel):
    """An MCP server a persona names: `server` as `mcp_tools` takes it, and its options."""

    model_config = ConfigDict(extra="forbid")

    server: str
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list[str])
    requires_approval: bool | list[str] = False
    prefix: str = ""
    timeout: float | None = 60.0

    def tools(self) -> list[Any]:
        from ..mcp import mcp_tools

        return mcp_tools(self.server, include=self.include, exclude=self.exclude,
                         requires_approval=self.requires_approval, prefix=self.prefix, timeout=self.timeout)


class Persona(BaseModel):
    """A persona as written; `agent()` makes it an `Agent`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    role: str
    goal: str
    backstory: str = ""
    tools: list[str] = Field(default_factory=list[str])
    mcp: list[MCPServerEntry] = Field(default_factory=list["MCPServerEntry"])
    model: str | None = None
    output: dict[str, Any] | None = None
    max_steps: int | None = None
    instructions: str = ""
    path: Path | None = None

    @property
    def description(self) -> str:
        """What a supervisor reads when it picks an agent."""
        return f"{self.role[:1].upper()}{self.role[1:]}: {self.goal}"

    def system_prompt(self) -> str:
        parts = [f"You are {self.name}, {self.role}. Your goal: {self.goal}", self.backstory, self.instructions]
        return "\n\n".join(p.strip() for p in parts if p and p.strip())

    def output_type(self) -> type[BaseModel] | None:
        if not self.output:
            return None
        fields = {name: _field(spec, self, name) for name, spec in self.output.items()}
        return create_model(f"{self.name.title().replace('-', '').replace('_', '')}Output", **fields)

    def agent(self, *, model: str | Model | None = None, tools: Sequence[Any] | None = None,
              root: str | os.PathLike[str] = ".", allow_hosts: Sequence[str] = (), timeout: float = 30.0,
              max_steps: int | None = None) -> Agent[Any]:
        """The persona as a task agent. `model` overrides the file's; `tools` overrides the named
        tools (otherwise they are built from `agentflow.tools` with `root`, `allow_hosts`, `timeout`).
        The tools of the MCP servers it names are added (their servers are started here)."""
        from agentflow.tools import ToolConfig, toolset  # pyright: ignore[reportMissingImports]

        made = list(tools) if tools is not None else toolset(
            self.tools, ToolConfig(root=Path(root), allow_hosts=list(allow_hosts), timeout=timeout))
        made += [t for entry in self.mcp for t in entry.tools()]
        output = self.output_type()
        return Agent(self.name, self.system_prompt(), tools=made, output=output,  # type: ignore[arg-type]
                     model=model or self.model, max_steps=max_steps or self.max_steps or 20,
                     description=self.description, ends_with="finish" if output else "text")


def _field(spec: Any, persona: Persona, name: str) -> Any:
    description = None
    if isinstance(spec, dict):
        description, spec = spec.get("description"), spec.get("type", "str")
    kind = _type(str(spec))
    if kind is None:
        raise PersonaError(persona.path or persona.name, None, f"output.{name}",
                           f"unknown type {spec!r}; use str, int, float, bool or list[...] of those")
    return (kind, Field(description=description))


def _type(text: str) -> Any:
    text = text.replace(" ", "")
    if text in _TYPES:
        return _TYPES[text]
    if text.startswith("list[") and text.endswith("]") and (inner := _type(text[5:-1])) is not None:
        return list[inner]  # type: ignore[valid-type]
    if text.endswith("?") and (inner := _type(text[:-1])) is not None:
        return inner | None
    return None


def parse(text: str, path: Path | str = "<persona>") -> Persona:
    """A persona from a file's text; PersonaError names the line and field of any mistake."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise PersonaError(path, 1, None, "a persona starts with a '---' line, then YAML front matter, then '---'")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise PersonaError(path, 1, None, "the front matter is not closed: add a '---' line after it")
    front = "\n".join(lines[1:end])
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
        data = yaml.safe_load(front)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None
        raise PersonaError(path, line, None, f"YAML error: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise PersonaError(path, 2, None, "the front matter must be a mapping of fields (name: ..., role: ...)")
    at = {k.value: k.start_mark.line + 2 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    problems: list[tuple[int | None, str | None, str]] = []  # every mistake, reported together

    def bad(key: str, problem: str, line: int | None = None) -> None:
        problems.append((line or at.get(key), key, problem))

    for key in data:
        if key not in FIELDS:
            bad(str(key), f"unknown field{did_you_mean(str(key), FIELDS)}; fields are {', '.join(FIELDS)}")
    for key in REQUIRED:
        if data.get(key) is None or (isinstance(data[key], str) and not data[key].strip()):
            bad(key, "missing or empty: every persona needs name, role and goal", at.get(key, 2))
        elif not isinstance(data[key], str):
            bad(key, f"must be text, not {data[key]!r}: put it in quotes")
    if isinstance(data.get("name"), str) and data["name"].strip() and not TOOL_NAME.fullmatch(data["name"]):
        bad("name", f"{data['name']!r} must be 1-64 letters, digits, '_' or '-'")
    tools = data.get("tools") or []
    if isinstance(tools, str):
        tools = [tools]
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        bad("tools", "must be a list of tool names")
        tools = []
    from agentflow.tools import known  # pyright: ignore[reportMissingImports] (tools/ ships as agentflow.tools)

    names = known()
    for t in tools:
        if t not in names:
            bad("tools", f"unknown tool {t!r}{did_you_mean(t, names)}; known: {', '.join(names)}")
    servers = _mcp_entries(data.get("mcp"), bad)
    for key, kind in (("backstory", str), ("model", str), ("max_steps", int), ("output", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            what = "a mapping of field: type" if kind is dict else kind.__name__
            bad(key, f"must be {what}")
    if isinstance(data.get("max_steps"), int) and data["max_steps"] < 1:
        bad("max_steps", f"must be at least 1, not {data['max_steps']}")
    if isinstance(data.get("model"), str):
        try:
            parse_model_string(data["model"])
        except ConfigError as e:
            bad("model", str(e))
    if problems:
        raise PersonaError.of(path, problems)
    fields: dict[str, Any] = {**data, "tools": tools, "mcp": servers}
    persona = Persona(**fields, instructions="\n".join(lines[end + 1:]).strip(), path=Path(path))
    try:
        persona.output_type()
    except PersonaError as e:
        spec = next((v for k, v in node.value if getattr(k, "value", None) == "output"), None)
        lines = {k.value: k.start_mark.line + 2 for k, _ in spec.value} if isinstance(spec, yaml.MappingNode) else {}
        line = lines.get((e.field or "").removeprefix("output."), at.get("output"))
        raise PersonaError(path, line, e.field, str(e).split(": ", 2)[-1]) from None
    return persona


def _mcp_entries(given: Any, bad: Callable[[str, str], None]) -> list[MCPServerEntry]:
    """The `mcp:` list: each a server string, or a mapping with `server:` and the options of `mcp_tools`."""
    from pydantic import ValidationError

    from ..mcp import ServerSpec

    items = [given] if isinstance(given, str | dict) else given or []
    if not isinstance(items, list):
        bad("mcp", "must be a list of MCP servers ('stdio:COMMAND', 'http://HOST/mcp' or {server: ..., include: ...})")
        return []
    out: list[MCPServerEntry] = []
    for item in items:
        entry = {"server": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            bad("mcp", f"{item!r} is not an MCP server: write 'stdio:COMMAND' or {{server: ..., include: [...]}}")
            continue
        for key in entry:
            if key not in MCP_FIELDS:
                bad("mcp", f"unknown field {key!r}{did_you_mean(str(key), MCP_FIELDS)}; fields are "
                           f"{', '.join(MCP_FIELDS)}")
        try:
            made = MCPServerEntry.model_validate({k: v for k, v in entry.items() if k in MCP_FIELDS})
            ServerSpec.parse(made.server)
        except ValidationError as e:
            bad("mcp", "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
        except ConfigError as e:
            bad("mcp", str(e))
        else:
            out.append(made)
    return out


def load(path: str | os.PathLike[str]) -> Persona:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PersonaError(path, None, None, f"cannot read it: {e.strerror}") from None
    return parse(text, path)


def search_path(dirs: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Where personas come from, in order: the shipped set, `$AGENTFLOW_PERSONAS`, then `dirs`."""
    shipped = Path(str(resources.files("agentflow.personas")))
    extra = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [shipped, *extra, *(Path(d) for d in dirs)]


def personas(dirs: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Persona]:
    """Every persona found, by name; a later directory's persona replaces a shipped one of the same name."""
    found: dict[str, Persona] = {}
    for folder in search_path(dirs):
        if not folder.is_dir():
            raise ConfigError(f"persona directory {folder} does not exist; create it or fix ${ENV} / --personas")
        for file in sorted(folder.glob("*.md")):
            if file.name.lower() != "readme.md":
                p = load(file)
                found[p.name] = p
    return found


def pick(names: Sequence[str] | None, dirs: Sequence[str | os.PathLike[str]] = ()) -> list[Persona]:
    """The named personas, in order (`None`: every persona, by name); one error names every unknown one."""
    found = personas(dirs)
    names = sorted(found) if names is None else names
    if missing := [n for n in names if n not in found]:
        hints = "".join(did_you_mean(n, found) for n in missing)
        raise ConfigError(f"there is no persona {', '.join(map(repr, missing))}{hints}; known: {', '.join(found)}")
    return [found[n] for n in names]


def get(name: str, dirs: Sequence[str | os.PathLike[str]] = ()) -> Persona:
    found = personas(dirs)
    if name not in found:
        raise ConfigError(f"there is no persona {name!r}{did_you_mean(name, found)}; known: "
                          f"{', '.join(sorted(found))}. Add a file with `name: {name}` to a directory given with "
                          f"--personas or ${ENV}")
    return found[name]
