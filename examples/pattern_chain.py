"""Prompt chaining (seed 003, pattern 1): outline >> draft >> polish.

Each task's output is the next task's input, bound by name: `draft(outline)` takes the output of
the task called `outline`. The prompts are the tasks' descriptions; the run input is the topic.

    python examples/pattern_chain.py                                                     # offline stand-in
    python examples/pattern_chain.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys

from _setup import model_or_stand_in, parser

from agentflow import ModelSettings
from agentflow.models import RequestInfo
from agentflow.workflow import Workflow, WorkflowError, task

SHORT = ModelSettings(temperature=0.2, max_tokens=400)


@task("Create an outline for a short article about {topic}: 3 to 5 numbered points, one line each. "
      "Answer with the outline only.", settings=SHORT)
async def outline(topic: str) -> str: ...


@task("Write a 150-word article about {topic} that follows this outline, one paragraph per point. "
      "Answer with the article's text; its first words are '{topic}'.\n\n{outline}", settings=SHORT)
async def draft(topic: str, outline: str) -> str: ...


@task("Edit this article about {topic} for clarity and flow. Answer with the edited article's text; its first "
      "words are '{topic}'.\n\n{draft}", settings=SHORT)
async def polish(topic: str, draft: str) -> str: ...


content = outline >> draft >> polish


def stand_in(info: RequestInfo) -> str:
    """Plays each step from its prompt: an outline of the topic, a draft of the outline's points
    (with a filler word), the draft without it."""
    prompt = info.last.content or ""
    if topic := re.match(r"Create an outline for a short article about (.+?): ", prompt):
        points = ["What {} are", "How {} work", "Where {} help today", "What to watch out for with {}"]
        return "\n".join(f"{i}. {p.format(topic[1])}" for i, p in enumerate(points, 1))
    body = prompt.split("\n\n", 1)[1]
    if topic := re.match(r"Write a 150-word article about (.+?) that", prompt):
        points = re.findall(r"^\d+\. (.+)$", body, re.MULTILINE)
        parts = " ".join(f"Part {i}, basically: {p}." for i, p in enumerate(points, 1))
        return f"{topic[1]}: an article in {len(points)} parts. {parts}"
    return body.replace(", basically", "")


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--topic", default="AI agents", help="what the article is about")
    args = p.parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(content, name="content", model=model)
    print(f"workflow {flow.name}: {' -> '.join(n for r in flow.rounds() for n in r)}\n")
    try:
        result = flow.run_sync(topic=args.topic)
    except WorkflowError as e:
        print(e)
        return 1
    for r in result.records:
        print(f"{r.task} ({r.seconds:.1f}s, {r.usage.total_tokens} tokens):")
        print("  " + str(r.output).strip().replace("\n", "\n  ") + "\n")
    print(f"model calls: {result.usage.requests}   tokens: {result.usage.total_tokens}   "
          f"time: {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
