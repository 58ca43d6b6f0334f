"""Quickstart: a task agent with two tools and a typed result.

Uses the model you configure (see examples/_setup.py: --model, --base-url, or OPENAI_API_KEY /
ANTHROPIC_API_KEY). With none configured it runs against an offline stand-in model that plays
the same protocol (it says so), so this file always runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

from _setup import model_or_stand_in, parser
from pydantic import BaseModel

from agentflow import Agent, tool
from agentflow.models import RequestInfo, call

ROOT = Path(__file__).resolve().parent


@tool
def list_files(pattern: Annotated[str, "a glob pattern, e.g. *.py"]) -> list[str]:
    """List the files of the examples directory that match a glob pattern."""
    return sorted(p.name for p in ROOT.glob(pattern) if p.is_file())


@tool
async def count_lines(name: Annotated[str, "a file name returned by list_files"]) -> int:
    """Count the lines of one file of the examples directory."""
    return len((ROOT / Path(name).name).read_text().splitlines())


class Report(BaseModel):
    total: int
    per_file: dict[str, int]


def stand_in(info: RequestInfo):
    observations = [m for m in info.messages if m.role == "tool"]
    if not observations:
        return call("list_files", pattern="*.py")
    if len(observations) == 1:
        return [call("count_lines", name=n) for n in json.loads(observations[0].content or "[]")]
    counts = {m.tool_call_id: int(m.content or 0) for m in observations[1:]}
    names = {c.id: c.arguments for m in info.messages for c in m.tool_calls if c.name == "count_lines"}
    per_file = {json.loads(names[i])["name"]: n for i, n in counts.items()}
    return call("finish", total=sum(per_file.values()), per_file=per_file)


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)
    counter = Agent("counter", "You count lines of code. Use the tools, then finish with the report.",
                    tools=[list_files, count_lines], output=Report, model=model, max_steps=10)
    result = counter.run_sync("Count the lines of every Python file in the examples directory.")
    print(f"model: {model.name}   stop: {result.stop_reason}   calls: {result.usage.requests}   "
          f"tokens: {result.usage.total_tokens}")
    for step in result.steps:
        if step.kind == "tool":
            print(f"  {step.call.name}({step.call.arguments}) -> {step.observation[:60]}")
    if result.output is not None:
        print(f"report: total={result.output.total} per_file={result.output.per_file}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
