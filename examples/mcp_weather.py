"""An agent whose tools come from an MCP server (examples/_weather_mcp.py, started over stdio).

    python examples/mcp_weather.py                     # a configured or pulled model, else a stand-in

The agent finds today's temperature in Oslo and Lima with the server's `temperature` tool and
converts both to Fahrenheit with its `to_fahrenheit` tool. The program checks the answer against
the server's own readings and exits 1 when it is wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _setup import models_for, parser
from pydantic import BaseModel

from agentflow import Agent
from agentflow.mcp import mcp_tools
from agentflow.models import RequestInfo, call

SERVER = f"stdio:{sys.executable} {Path(__file__).with_name('_weather_mcp.py')}"


class Temperatures(BaseModel):
    oslo_f: float
    lima_f: float


def stand_in(info: RequestInfo) -> Any:
    """Plays the protocol offline: two readings, two conversions, then finish."""
    seen = [m.content or "" for m in info.messages if m.role == "tool"]
    steps = [call("temperature", city="Oslo"), call("temperature", city="Lima")]
    if len(seen) < 2:
        return steps[len(seen)]
    if len(seen) < 4:
        return call("to_fahrenheit", celsius=float(seen[len(seen) - 2].split()[0]))
    return call("finish", oslo_f=float(seen[2]), lima_f=float(seen[3]))


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = models_for(args, {"agent": stand_in})["agent"]
    tools = mcp_tools(SERVER)  # the server starts here, once for this process
    print("tools from the MCP server:", ", ".join(t.name for t in tools))
    agent = Agent("weather", "Answer with the tools. Convert with to_fahrenheit; do not compute yourself.",
                  tools=tools, output=Temperatures, model=model, max_steps=10)
    result = agent.run_sync("What is the temperature today in Oslo and in Lima, in degrees Fahrenheit?")
    print("stop:", result.stop_reason)
    print("answer:", json.dumps(result.output.model_dump() if result.output else None))
    right = result.output == Temperatures(oslo_f=39.2, lima_f=66.2)
    print("checked against the server's readings (Oslo 4 C = 39.2 F, Lima 19 C = 66.2 F):",
          "right" if right else "wrong")
    return 0 if right else 1


if __name__ == "__main__":
    raise SystemExit(main())
