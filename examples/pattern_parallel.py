"""Parallelization (seed 003, pattern 3): bulk email classification, one model call per email, all
in flight at once.

`each(classify_email, over="emails")` maps the task over the list given as the run input; the
calls run concurrently (up to the workflow's `concurrency`) and the output keeps the emails'
order. The records show the overlap: the run takes about as long as its slowest call, not as
long as all the calls one after another (a server with a single slot, like a default
llama-server, still queues them).

    python examples/pattern_parallel.py                                                     # offline stand-in
    python examples/pattern_parallel.py --base-url http://127.0.0.1:8080/v1 --constrained   # llama-server
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Literal

from _setup import model_or_stand_in, parser
from pydantic import BaseModel

from agentflow import ModelSettings
from agentflow.models import RequestInfo, call
from agentflow.workflow import Workflow, WorkflowError, each, task

EMAILS = [
    "URGENT: the production database is down and customers cannot log in. Please call me now.",
    "Congratulations!!! You have won a free cruise. Click here to claim your prize today.",
    "Hi team, attached are the notes from Tuesday's planning meeting.",
    "The server room is flooding, we need someone on site immediately.",
    "Cheap watches, best prices, limited offer, buy now!!!",
]


class EmailLabel(BaseModel):
    label: Literal["urgent", "spam", "normal"]


@task("Is this email urgent, spam or normal? spam: advertising, prizes, sales offers, scams. urgent: an "
      "emergency that needs action right away. normal: ordinary work email.\n\nEmail: {email}",
      settings=ModelSettings(temperature=0))
async def classify_email(email: str) -> EmailLabel: ...


inbox = each(classify_email, over="emails", name="labels")


async def stand_in(info: RequestInfo) -> object:
    """A keyword classifier that takes a third of a second, as a remote model might."""
    await asyncio.sleep(0.3)
    email = (info.last.content or "").rsplit("Email: ", 1)[1].lower()
    if re.search(r"urgent|immediately|now\.|down", email):
        return call("finish", label="urgent")
    return call("finish", label="spam" if re.search(r"won|prize|cheap|buy now|click", email) else "normal")


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    model = model_or_stand_in(args, stand_in)
    flow = Workflow(inbox, name="inbox", model=model)
    try:
        result = flow.run_sync(emails=EMAILS)
    except WorkflowError as e:
        print(e)
        return 1
    for email, label in zip(EMAILS, result.output, strict=True):
        print(f"{label.label:<7} {email[:70]}")
    calls = [r for r in result.records if r.unit == "prompt"]
    busy = sum(r.seconds for r in calls)
    overlap = busy / result.seconds
    print(f"\n{len(calls)} calls: wall time {result.seconds:.2f}s, the calls' times add up to {busy:.2f}s = "
          f"{overlap:.1f}x the wall time: " + ("they overlapped" if overlap > 1.5 else "they ran one after another"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
