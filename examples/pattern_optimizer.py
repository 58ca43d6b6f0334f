"""Evaluator-optimizer (seed 003, pattern 5): code generation with quality control. The model writes
the code, a reviewer scores it with feedback, and the code is rewritten until the score is at
least 8 or three attempts have been made.

`loop(generate >> evaluate, until=..., max_iterations=3)` repeats the body. Inside it, `generate`
takes `evaluate`'s output and its own from the previous iteration (None on the first, hence the
defaults): its body writes the request, first "write", then "improve this, given that feedback".
Every iteration's outputs are kept in `result.attempts["improve"]`.

    python examples/pattern_optimizer.py                                                     # offline stand-in
    python examples/pattern_optimizer.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys

from _setup import model_or_stand_in, parser
from pydantic import BaseModel, Field

from agentflow import ModelSettings
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, WorkflowError, loop, task

SETTINGS = ModelSettings(temperature=0.2, max_tokens=600)


class Evaluation(BaseModel):  # the feedback first: the model reasons before it scores
    feedback: str = Field(description="the most important thing to improve, concretely")
    score: int = Field(ge=1, le=10, description="1 (poor) to 10 (excellent)")


@task("You are an expert Python programmer.", settings=SETTINGS)
async def generate(task: str, evaluate: Evaluation | None = None, generate: str | None = None) -> str:
    if evaluate is None or generate is None:
        return f"Write {task}. Answer with the code only: its first word is 'def'."
    return (f"Improve this code for: {task}\n\nReviewer's feedback: {evaluate.feedback}\n\nCode:\n{generate}\n\n"
            "Answer with the improved code only: its first word is 'def'.")


@task("You review Python code strictly. First say what is wrong or missing (efficiency, rejecting bad input such as "
      "negative numbers, type hints), then score it from 1 to 10: 8 or more only if nothing important is missing.",
      output=Evaluation, settings=SETTINGS)
async def evaluate(task: str, generate: str) -> str:
    return f"Task: {task}\n\nCode:\n{generate}"


improve = loop(generate >> evaluate, until=lambda review: review.score >= 8, max_iterations=3, name="improve")

NAIVE = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)"
BETTER = """def fibonacci(n: int) -> int:
    if n < 0:
        raise ValueError("n must be non-negative")
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a"""


def stand_in(info: RequestInfo) -> object:
    """A programmer who writes the naive version first and follows the feedback, and a reviewer who
    reads the code it is shown."""
    request = info.last.content or ""
    if "finish" not in info.tool_names:
        return BETTER if re.search(r"loop|negative", request) else NAIVE
    code = request.split("Code:\n", 1)[1]
    if "fibonacci(n - 1)" in code:
        return call("finish", score=4, feedback="Exponential recursion: use a loop, and reject negative n.")
    return call("finish", score=9, feedback="Linear time and validated input; fine.")


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--task", default="a Python function fibonacci(n) that returns the n-th Fibonacci number")
    args = p.parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(improve, name="codegen", model=model)
    try:
        result = flow.run_sync(task=args.task)
    except WorkflowError as e:
        print(e)
        return 1
    for i, attempt in enumerate(result.attempts["improve"], 1):
        review: Evaluation = attempt["evaluate"]
        print(f"attempt {i}: score {review.score}/10 - {review.feedback}")
    loop_record = next(r for r in result.records if r.task == "improve")
    print(f"\nloop: {loop_record.detail}\n\nfinal code (score {result.output.score}):\n{result['generate'].strip()}")
    print(f"\nmodel calls: {result.usage.requests}   tokens: {result.usage.total_tokens}   time: {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
