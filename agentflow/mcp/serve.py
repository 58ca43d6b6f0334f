"""agentflow targets as MCP tools: `agentflow mcp-serve FILE.py[:NAME]` (the `mcp` SDK's server).

Each agent, supervisor or workflow becomes one tool named after it: an agent or supervisor takes
`{"task": ...}`, a workflow its inputs (the schemas the REST server states, server/targets.py).
A call runs the target in this process and answers with its output, as text and, when the output
is an object, as structured content too; a run that ends without a result, or fails, answers
with an error result saying why, so the calling model reads it instead of waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.errors import AgentflowError
from ..core.tool import to_observation
from ..server.targets import Served


def _input_schema(served: Served) -> dict[str, Any]:
    if served.kind == "workflow":
        return served.input_schema()
    return {"type": "object", "properties": {"task": {"type": "string", "description": "the task"}},
            "required": ["task"]}


async def _run(served: Served, arguments: dict[str, Any]) -> tuple[Any, str | None]:
    """The target's output, or None and why it has none."""
    target: Any = served.target
    if served.kind == "workflow":
        _, inputs = served.arguments(served.input_type.model_validate(arguments))
        result = await target.run(**inputs)
        return (result.output, None) if result.ok else (None, result.error)
    result = await target.run(str(arguments.get("task", "")))
    return (result.output, None) if result.ok else (None, result.detail or result.stop_reason)


def server(targets: Sequence[Any], name: str = "agentflow") -> Any:
    """A low-level `mcp.server.Server` whose tools are `targets`."""
    from mcp import types
    from mcp.server import Server
    from pydantic import ValidationError

    served = {t.name: Served(t.name, t) for t in targets}

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=s.name, description=s.description or f"the agentflow {s.kind} {s.name}",
                       input_schema=_input_schema(s)) for s in served.values()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        def said(text: str, error: bool = False, data: Any = None) -> types.CallToolResult:
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error,
                                        structured_content=data)

        found = served.get(params.name)
        if found is None:
            return said(f"there is no tool {params.name!r}; the tools are {', '.join(served)}", True)
        try:
            output, why = await _run(found, dict(params.arguments or {}))
        except ValidationError as e:
            return said(f"invalid arguments for {found.name}: {e.errors(include_url=False)}", True)
        except AgentflowError as e:
            return said(f"{found.name} failed: {e}", True)
        if why is not None:
            return said(f"{found.name} ended without a result: {why}", True)
        data = output.model_dump(mode="json") if hasattr(output, "model_dump") else output
        return said(to_observation(output), data=data if isinstance(data, dict) else None)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(targets: Sequence[Any]) -> None:
    from mcp.server.stdio import stdio_server

    mcp_server = server(targets)
    async with stdio_server() as (read, write):
        await mcp_server.run(read, write, mcp_server.create_initialization_options())


async def serve_http(targets: Sequence[Any], host: str, port: int, log_level: str = "warning") -> None:
    """Streamable HTTP at http://HOST:PORT/mcp."""
    import uvicorn

    app = server(targets).streamable_http_app(host=host)
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level)).serve()
