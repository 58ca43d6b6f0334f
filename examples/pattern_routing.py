"""Routing (seed 003, pattern 2): a customer support query is classified, then answered by the
specialist its category names.

`classify` returns a typed `Classification` (the model calls `finish` with it); `route()` reads
its one Literal field and runs that branch, which sees the run's inputs (and could take the
router's output as a `classify` parameter). A Literal value without a branch would be an error
when the workflow is built, not when a customer hits it. Each specialist's description is its
system message and the query, which its body returns, the user message.

    python examples/pattern_routing.py                                                     # offline stand-in
    python examples/pattern_routing.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import re
import sys
from typing import Literal

from _setup import model_or_stand_in, parser
from pydantic import BaseModel

from agentflow import ModelSettings
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, WorkflowError, route, task

QUERIES = [
    "My app crashes every time I upload a photo. How do I fix it?",
    "I was charged twice for my subscription this month.",
    "What are your opening hours on public holidays?",
]


class Classification(BaseModel):
    category: Literal["technical", "billing", "general"]


@task("Classify this customer support query. technical: the product fails or errors; billing: payments, charges, "
      "invoices, refunds; general: anything else.\n\nQuery: {query}")
async def classify(query: str) -> Classification: ...


@task("You are a technical support specialist. Give the customer clear numbered steps to fix their problem.")
async def technical(query: str) -> str:
    return query


@task("You are a billing specialist. Explain what happened to the payment and how it will be put right.")
async def billing(query: str) -> str:
    return query


@task("You are a friendly customer service representative. Answer briefly and helpfully.")
async def general(query: str) -> str:
    return query


support = route(classify, {"technical": technical, "billing": billing, "general": general}, name="respond")


def stand_in(info: RequestInfo) -> object:
    """A keyword classifier, and specialists that answer in their own voice."""
    prompt = info.last.content or ""
    if "finish" in info.tool_names:
        query = prompt.rsplit("Query: ", 1)[1].lower()
        if re.search(r"crash|error|bug|fail", query):
            return call("finish", category="technical")
        return call("finish", category="billing" if re.search(r"charge|pay|invoice|refund", query) else "general")
    role = re.match(r"You are an? (.+?)\.", info.messages[0].content or "")
    return f"As a {role[1] if role else 'assistant'}, about {prompt!r}: here is what to do."


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(support, name="support", model=model, settings=ModelSettings(temperature=0, max_tokens=300))
    for query in QUERIES:
        try:
            result = flow.run_sync(query=query)
        except WorkflowError as e:
            print(e)
            return 1
        answered = next(r for r in result.records if r.id.startswith("respond/"))  # the branch that ran
        print(f"query:  {query}\nroute:  {result['classify'].category} -> {answered.task}   "
              f"({result.seconds:.1f}s, {result.usage.requests} model calls)")
        print("answer: " + result.output.strip().replace("\n", "\n        ") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
