"""Task agents made on the fly: the supervisor writes a spec, we build the agent.

The book's "generate arbitrary tasks on the fly": the supervisor writes the instructions and
picks tools from the library it was given (the schema lists only those names, and building
checks again, so a tool outside the library can never be reached); the output is plain text
or one of the named schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..agent.delegation import CONTEXT_DOC, TASK_DOC, AgentTool
from ..agent.loop import Agent
from ..core.errors import ConfigError
from ..core.tool import Tool, ToolError, as_tool
from ..models import Model

NEW_AGENT = "new_agent"
NEW = "new"  # the agent name a plan step or worklist task uses to ask for an agent made on the fly


class AgentSpec(BaseModel):
    """A task agent the supervisor asks for: `tools` from its library, `output` text or a schema name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A short name for the agent, e.g. summarizer")
    instructions: str = Field(description="Its system message: its role and how to work")
    tools: list[str] = Field(description="Tools it may use, from the library")
    output: str = Field(description="What it returns: text, or a named schema")


def narrowed(base: type[BaseModel], name: str, **types: Any) -> type[BaseModel]:
    """`base` with some fields' types narrowed for the model's eyes (a Literal of allowed names);
    a field given the type None is left out. Descriptions and defaults are kept."""
    fields: dict[str, Any] = {}
    for field, info in base.model_fields.items():
        kind = types.get(field, info.annotation)
        if kind is not None:
            fields[field] = (kind, info)
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=base.__doc__, **fields)


class AgentFactory:
    """Builds task agents from specs, with tools only from `library` and outputs only from `schemas`."""

    def __init__(self, library: Sequence[Tool[Any] | Callable[..., Any]], schemas: Mapping[str, type[Any]],
                 model: str | Model | None, max_steps: int | None = 20) -> None:
        self.library = {t.name: t for t in map(as_tool, library)}
        if "text" in schemas:
            raise ConfigError("a schema may not be named 'text': that name means a plain string output")
        self.schemas = dict(schemas)
        self.model = model
        self.max_steps = max_steps
        tool_names: Any = Literal[tuple(self.library)] if self.library else Literal["none"]  # type: ignore[valid-type]
        outputs: Any = Literal[("text", *self.schemas)]  # type: ignore[valid-type]
        self.spec = narrowed(AgentSpec, "NewAgent", tools=list[tool_names], output=outputs)

    def describe(self) -> str:
        """The library and schemas, for the supervisor's instructions."""
        tools = "; ".join(f"{t.name}: {t.description}" for t in self.library.values()) or "none"
        schemas = ", ".join(["text", *self.schemas])
        return f"Tool library for new agents: {tools}. Outputs for new agents: {schemas}."

    def build(self, spec: BaseModel) -> Agent[Any]:
        """The agent `spec` describes; ToolError (for the model to read) if it asks for what is not offered."""
        values = spec.model_dump()
        unknown = [name for name in values["tools"] if name not in self.library]
        if unknown:
            raise ToolError(f"tools {', '.join(unknown)} are not in the library; choose from: "
                            f"{', '.join(self.library) or 'none (give no tools)'}")
        output = None if values["output"] == "text" else self.schemas.get(values["output"])
        if values["output"] != "text" and output is None:
            raise ToolError(f"output {values['output']!r} is not known; choose text or one of: "
                            f"{', '.join(self.schemas)}")
        name = "".join(c if c.isalnum() or c in "_-" else "_" for c in values["name"])[:64] or "agent"
        return Agent(name, values["instructions"], tools=[self.library[n] for n in values["tools"]],
                     output=output, model=self.model, max_steps=self.max_steps)

    def tool(self, share: float | None = None) -> Tool[Any]:
        """`new_agent`: create an agent for a task no existing agent fits, and give it the task."""
        fields: dict[str, Any] = {
            "agent": (self.spec, ...),
            "task": (Annotated[str, Field(description=TASK_DOC)], ...),
            "context": (Annotated[str | None, Field(description=CONTEXT_DOC)], None),
        }
        args = create_model(f"{NEW_AGENT}_arguments", __config__=ConfigDict(extra="forbid"), **fields)

        async def new_agent(agent: BaseModel, task: str, context: str | None = None) -> Any:
            return await AgentTool(self.build(agent), share=share).delegate(task, context)

        made = Tool(new_agent, name=NEW_AGENT, args_model=args,
                    description="Create a task agent for a task no existing agent fits, and give it the task.")
        made.journaled = False
        return made
