"""The typed-state style of seed 003: `Workflow[State](step, step, ...)`, where every step takes the
state and returns it, and a state with `should_continue=False` ends the run (the steps after it
are recorded as skipped).

Two workflows, with the tasks of pattern_chain.py and pattern_optimizer.py awaited inside the
steps (`await outline(topic=...)` runs the task on the workflow's model and returns its output):
- prompt chaining: create_outline >> check_outline (a gate in plain Python) >> write_draft >> polish_content;
- evaluator-optimizer, as the seed writes it: one step looping generate, evaluate, check until
  the check sets should_continue=False.

    python examples/state_workflow.py                                                     # offline stand-in
    python examples/state_workflow.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from _setup import models_for, parser
from pattern_chain import draft, outline, polish
from pattern_chain import stand_in as writer
from pattern_optimizer import Evaluation, evaluate, generate
from pattern_optimizer import stand_in as coder

from agentflow.workflow import Workflow, WorkflowError


@dataclass
class WorkflowState:
    should_continue: bool = True


# -- prompt chaining ----------------------------------------------------------------------------

@dataclass
class ChainState(WorkflowState):
    topic: str = ""
    outline: str = ""
    draft: str = ""
    final: str = ""
    note: str = ""


async def create_outline(state: ChainState) -> ChainState:
    state.outline = await outline(topic=state.topic)
    return state


def check_outline(state: ChainState) -> ChainState:
    """A gate: no article is written from an outline of fewer than three points."""
    points = re.findall(r"^\s*(?:\d+[.)]|[-*]) ", state.outline, re.MULTILINE)
    if len(points) < 3:
        state.note, state.should_continue = f"the outline has {len(points)} points; 3 are needed", False
    return state


async def write_draft(state: ChainState) -> ChainState:
    state.draft = await draft(topic=state.topic, outline=state.outline)
    return state


async def polish_content(state: ChainState) -> ChainState:
    state.final = await polish(topic=state.topic, draft=state.draft)
    return state


# -- evaluator-optimizer ------------------------------------------------------------------------

@dataclass
class OptimizerState(WorkflowState):
    task: str = ""
    draft: str = ""
    evaluation: Evaluation | None = None
    scores: list[int] = field(default_factory=list[int])
    final: str = ""


async def generate_or_refine(state: OptimizerState) -> OptimizerState:
    state.draft = await generate(task=state.task, evaluate=state.evaluation, generate=state.draft or None)
    return state


async def evaluate_quality(state: OptimizerState) -> OptimizerState:
    state.evaluation = await evaluate(task=state.task, generate=state.draft)
    state.scores.append(state.evaluation.score)
    return state


async def check_quality(state: OptimizerState) -> OptimizerState:
    if state.scores[-1] >= 8 or len(state.scores) >= 3:
        state.final, state.should_continue = state.draft, False
    return state


async def optimize_loop(state: OptimizerState) -> OptimizerState:
    while state.should_continue:
        state = await check_quality(await evaluate_quality(await generate_or_refine(state)))
    return state


def indented(text: str) -> str:
    return "    " + text.strip().replace("\n", "\n    ")


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    models = models_for(args, {"writer": writer, "coder": coder})
    # The tasks awaited inside the steps use their workflow's model.
    chain = Workflow[ChainState](create_outline, check_outline, write_draft, polish_content, name="content",
                                 model=models["writer"])
    optimizer = Workflow[OptimizerState](optimize_loop, name="codegen", model=models["coder"])
    try:
        written = chain.run_sync(ChainState(topic="AI agents"))
        coded = optimizer.run_sync(OptimizerState(task="a Python function fibonacci(n) that returns the n-th "
                                                       "Fibonacci number"))
    except WorkflowError as e:
        print(e)
        return 1
    state = written.output
    print("content: " + "   ".join(f"{r.task} {r.status}" for r in written.records))
    print(f"  outline:\n{indented(state.outline)}\n  final:\n{indented(state.final or '(none: ' + state.note + ')')}")
    print(f"  model calls: {written.usage.requests}\n")
    state = coded.output
    print(f"codegen: scores {state.scores}, stopped by {coded.stopped_by} (should_continue=False)")
    print(f"  final code:\n{indented(state.final)}\n  model calls: {coded.usage.requests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
