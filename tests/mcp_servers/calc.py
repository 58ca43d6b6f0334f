"""An MCP server for the tests, built with the `mcp` SDK: `python -m tests.mcp_servers.calc [stdio|http PORT|sse PORT]`.

Its tools: `add` (two integers), `shout` (text, an optional count), `slow` (sleeps), `crash` (the
process exits at once), `fail` (an error result), `picture` (an image), `stats` (structured
content only), `counter` (counts its calls in the file $CALC_COUNTS, if set), and `loose` (a
free-form object argument, which strict mode cannot state).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str, times: int = 1) -> str:
    """Upper-case a text, repeated `times` times."""
    return " ".join([text.upper()] * times)


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then say so."""
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


@server.tool()
def crash() -> str:
    """Stop the server at once."""
    os._exit(3)


@server.tool()
def fail(why: str) -> CallToolResult:
    """Report a failure."""
    return CallToolResult(content=[TextContent(type="text", text=f"cannot: {why}")], is_error=True)


@server.tool()
def picture() -> CallToolResult:
    """A 1x1 PNG."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    return CallToolResult(content=[TextContent(type="text", text="a red dot"),
                                   ImageContent(type="image", data=png, mime_type="image/png")])


@server.tool()
def stats() -> CallToolResult:
    """Numbers, as structured content only."""
    return CallToolResult(content=[], structured_content={"mean": 2.5, "n": 4})


@server.tool()
def counter(label: str) -> str:
    """Count a call (a side effect the durable tests can see)."""
    if path := os.environ.get("CALC_COUNTS"):
        with open(path, "a") as f:
            f.write(label + "\n")
    return f"counted {label}"


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def loose(data: dict[str, Any]) -> str:
    """Take any object."""
    return str(sorted(data))


if __name__ == "__main__":
    how = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if how == "stdio":
        server.run()
    else:
        server.run("streamable-http" if how == "http" else "sse", host="127.0.0.1", port=int(sys.argv[2]))
