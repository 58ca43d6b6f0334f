"""The model tests/test_server.py hands `agentflow serve --model`: each served agent's moves, by its instructions."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from agentflow import FunctionModel
from agentflow.models import RequestInfo, call


def _said(info: RequestInfo) -> list[str]:
    return [m.content or "" for m in info.messages if m.role == "user"]


async def reply(info: RequestInfo) -> Any:
    system = info.messages[0].content or "" if info.messages[0].role == "system" else ""
    last = info.last
    task = _said(info)[-1]
    if "gated" in task and last.role == "user":
        while not Path(os.environ["SERVER_GATE"]).exists():
            await asyncio.sleep(0.05)
    if system.startswith("Tidy up"):
        return f"tidied: {task}"
    finish = next((t.parameters.get("properties", {}) for t in info.tools if t.name == "finish"), {})
    if "goal" in finish:  # the plan-mode supervisor's plan
        return call("finish", goal="tidy", steps=[{"id": "s1", "task": "delete everything", "agent": "tidier",
                                                  "needs": []}])
    if "decision" in finish:  # ... its review of the results
        return call("finish", decision="keep", reason="fine", steps=None)
    if any("tidied" in (m.content or "") for m in info.messages):  # ... its answer
        return call("finish", answer="done: " + next(m.content or "" for m in reversed(info.messages)
                                                     if "tidied" in (m.content or "")))
    if system.startswith("A travel assistant"):  # chat: what it remembers of the user
        return "You told me: " + " | ".join(_said(info))
    if system.startswith("Ask the person"):
        return call("ask_human", question="Which city?") if last.role == "user" else call("finish",
                                                                                         answer=last.content)
    if "worker" in info.tool_names:  # the supervisor
        return call("worker", task="flights to Rome", context="") if last.role == "user" else call(
            "finish", answer=f"the worker says: {last.content}")
    if "explode" in info.tool_names:
        if last.role == "user":
            return call("explode", what="the moon")
        raise RuntimeError(f"provider said no to key {os.environ.get('OPENAI_API_KEY')} (see /var/log/provider.log)")
    city = task.split()[-1]
    if last.role == "user":
        return call("search_flights", city=city)
    if system.startswith("Plan a trip"):
        return call("finish", city=city, flights=json.loads(last.content or "[]"))
    if "book" in info.tool_names and last.content and last.content.startswith("["):  # flights found: book one
        return call("book", flight=json.loads(last.content)[0])
    return call("finish", answer=last.content)


model = FunctionModel(reply, name="server-test")
