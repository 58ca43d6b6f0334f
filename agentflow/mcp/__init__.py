"""MCP both ways: an MCP server's tools as agentflow tools (`mcp_tools`), and agentflow targets served
as MCP tools (`agentflow mcp-serve`, serve.py). Needs the extra: `pip install 'agentflow[mcp]'`.

    from agentflow.mcp import mcp_tools
    agent = Agent("files", tools=mcp_tools("stdio:python -m my_server", include=["read_*"]))
"""

from .connection import MCPConnection, MCPServerGone, ServerSpec, close_all, connection_to
from .tools import MCPTool, mcp_tools

__all__ = ["MCPConnection", "MCPServerGone", "MCPTool", "ServerSpec", "close_all", "connection_to", "mcp_tools"]
