"""The team `agentflow chat` and `agentflow run "a task"` talk to: a supervisor whose task agents are personas."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from ..agent import persona
from ..agent.loop import Agent
from ..core.errors import ConfigError, all_at_once
from ..mcp import ServerSpec, connection_to, mcp_tools
from ..models import Model
from ..teams.supervisor import Mode, OnPlan, Supervisor

NAME = "assistant"
INSTRUCTIONS = "You are a helpful assistant talking with a person in a terminal. Be brief and concrete."
MODES = ("route", "plan", "worklist")


class ChatConfig(BaseModel):
    """What a chat session is made of; saved with it."""

    personas: list[str] = Field(default_factory=list[str], description="its task agents; empty: every persona")
    persona_dirs: list[str] = Field(default_factory=list[str])
    mode: Mode = "route"
    model: str | None = None
    root: str = "."
    allow_hosts: list[str] = Field(default_factory=list[str])
    timeout: float = 30.0
    mcp: list[str] = Field(default_factory=list[str], description="MCP servers, each a task agent of its own")


def checked_model(config: ChatConfig) -> Model:
    """The config's model, once its model and its personas are known to be right: every mistake in
    either is one error, so that a command line is fixed in one go."""
    from .loading import load_model

    problems: list[str] = []
    model = None
    try:
        model = load_model(config.model)
    except ConfigError as e:
        problems.append(str(e))
    try:
        persona.pick(config.personas or None, config.persona_dirs)
    except ConfigError as e:
        problems.append(str(e))
    for server in config.mcp:
        try:
            ServerSpec.parse(server)
        except ConfigError as e:
            problems.append(f"--mcp: {e}")
    if problems or model is None:
        raise ConfigError(all_at_once(problems))
    return model


def team(config: ChatConfig, model: Model, on_plan: OnPlan | None = None) -> Supervisor[str]:
    """The supervisor of a chat (or of `agentflow run`): the named personas as its task agents."""
    agents = [p.agent(model=model, root=config.root, allow_hosts=config.allow_hosts, timeout=config.timeout)
              for p in persona.pick(config.personas or None, config.persona_dirs)]
    for server in config.mcp:
        agents.append(mcp_agent(server, model, taken={a.name for a in agents}))
    return Supervisor(agents, model=model, mode=config.mode, name=NAME, instructions=INSTRUCTIONS, on_plan=on_plan)


def mcp_agent(server: str, model: Model, taken: set[str] = frozenset()) -> Agent[str]:  # type: ignore[assignment]
    """A task agent whose tools are one MCP server's, named for the server (as it names itself)."""
    tools = mcp_tools(server, skip_unstrict=True)
    own = connection_to(ServerSpec.parse(server)).server_name or "mcp"
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", own)[:60]
    if name in taken:
        name += "_mcp"
    listed = ", ".join(t.name for t in tools)
    return Agent(name, f"You are {name}: you do tasks with the tools of the MCP server {own!r} ({listed}).",
                 tools=tools, model=model, description=f"Uses the MCP server {own!r}; its tools: {listed}.")
