"""Task chaining (after the Dapr Agents "LLM-based Task Workflows" quickstart): two prompt tasks,
the second formatted with the first one's output.

A task's description is its prompt; `{character}` is filled with the output of the task named
`character`, which `>>` runs first. Uses the model you configure (see examples/_setup.py); with
none it runs against an offline stand-in model (it says so), so this file always runs.

    python examples/lotr_chain.py                                                     # offline stand-in
    python examples/lotr_chain.py --base-url http://127.0.0.1:8080/v1                 # llama-server
"""

from __future__ import annotations

import sys

from _setup import model_or_stand_in, parser

from agentflow.models import RequestInfo
from agentflow.workflow import Workflow, task


@task("Pick a random character from The Lord of the Rings. Answer with the character's name only.")
async def character() -> str: ...


@task("What is a famous line by {character} in The Lord of the Rings? Answer with the line only, in quotes.")
async def line(character: str) -> str: ...


def stand_in(info: RequestInfo) -> str:
    """Plays both tasks offline: a character, then a line of that character's."""
    request = info.last.content or ""
    return "Gandalf" if request.startswith("Pick") else '"You shall not pass!"'


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(character >> line, name="lotr", model=model)
    result = flow.run_sync()
    print(f"character: {result.outputs['character'].strip()}")
    print(f"line: {result.output.strip()}")
    print(f"\nmodel: {model.name}   calls: {result.usage.requests}   tokens: {result.usage.total_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
