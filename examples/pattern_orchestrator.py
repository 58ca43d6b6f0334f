"""Orchestrator-workers (seed 003, pattern 4): a research task is broken into subtasks by the model,
a worker researches each of them at the same time, and a last call synthesizes their findings.

Unlike pattern_parallel.py, the list is not known in advance: `decompose` writes it (a typed
`Plan`), and `each(research, over="decompose.subtasks")` maps the worker over that field. The
workers' outputs reach `synthesize` as one list, in the subtasks' order, under the worker's name.

    python examples/pattern_orchestrator.py                                                     # offline stand-in
    python examples/pattern_orchestrator.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys

from _setup import model_or_stand_in, parser
from pydantic import BaseModel, Field

from agentflow import ModelSettings
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, WorkflowError, each, task

SHORT = ModelSettings(temperature=0.2, max_tokens=400)


class Plan(BaseModel):
    subtasks: list[str] = Field(description="3 research questions, each one sentence that names the subject")


@task("Break this research task into 3 subtasks that can be researched separately, each a question that makes "
      "sense on its own: {task}", settings=SHORT)
async def decompose(task: str) -> Plan: ...


@task("As part of the research task '{task}', research this question and give the key findings in 2 or 3 "
      "sentences: {subtask}", settings=SHORT)
async def research(subtask: str, task: str) -> str: ...


@task("You write research reports. Combine the findings into one short report (under 200 words) that answers "
      "the research task.", settings=SHORT)
async def synthesize(task: str, research: list[str]) -> str:
    findings = "\n".join(f"{i}. {finding}" for i, finding in enumerate(research, 1))
    return f"Research task: {task}\n\nFindings:\n{findings}"


assistant = decompose >> each(research, over="decompose.subtasks") >> synthesize


def stand_in(info: RequestInfo) -> object:
    """Plays the three roles: subtasks drawn from the task's words, a finding per subtask, and a
    report that quotes every finding."""
    prompt = info.last.content or ""
    if "finish" in info.tool_names:
        topic = prompt.rsplit(": ", 1)[1].removeprefix("Research ").rstrip(".")
        return call("finish", subtasks=[f"What are the main ethical concerns of {topic}?",
                                        f"What are the technical challenges of {topic}?",
                                        f"Which solutions to {topic} problems exist today?"])
    if question := re.match(r"As part of the research task .*?, research this question .*?: (.+)", prompt):
        return f"Finding on '{question[1]}': three papers agree on it."
    findings = re.findall(r"^\d+\. (.+)$", prompt, re.MULTILINE)
    return f"Report ({len(findings)} findings): " + " ".join(findings)


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--task", default="Research AI safety", help="the research task")
    args = p.parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(assistant, name="research", model=model)
    try:
        result = flow.run_sync(task=args.task)
    except WorkflowError as e:
        print(e)
        return 1
    print(f"task: {args.task}\n\nsubtasks, researched at the same time:")
    for subtask, finding in zip(result["decompose"].subtasks, result["research"], strict=True):
        print(f"- {subtask}\n    {finding.strip()[:300]}")
    print("\nreport:\n  " + result.output.strip().replace("\n", "\n  "))
    print(f"\nmodel calls: {result.usage.requests}   tokens: {result.usage.total_tokens}   time: {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
