"""A scripted model for driving `agentflow chat` / `agentflow run` in a real terminal:
`agentflow chat --model tests/chat_model.py`. It plays the supervisor and the personas, deciding
each reply from the request (who is asked, in which mode, what was said last). Its text
streams word by word with a pause, so a test can see a reply arrive in pieces.

What the person types decides the script:
- "hello ..."     the supervisor answers itself, slowly streamed
- "compute ..."   the tutor uses the calculator on 6*7
- "shell ..."     the coder runs a shell command that needs approval (it writes marker.txt)
- "sleep ..."     the model takes 30 s (to be cancelled with Ctrl-C)
- "fail ..."      the model fails with an error
- worklist mode:  two tasks (researcher, then writer) on a live task table
- plan mode:      a two-step plan (researcher, then writer) to review
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence

from agentflow import FunctionModel, Message, ModelError
from agentflow.core.messages import StreamEvent, TextDelta
from agentflow.models import ModelSettings
from agentflow.models.base import OutputSpec, ToolSpec
from agentflow.models.scripted import Reply, RequestInfo, call

WORD_PAUSE = float(os.environ.get("CHAT_MODEL_WORD_PAUSE", "0.15"))


def _last_user(messages: Sequence[Message]) -> str:
    return next((m.content or "" for m in reversed(messages) if m.role == "user"), "")


async def reply(info: RequestInfo) -> Reply:
    system = info.messages[0].content or "" if info.messages and info.messages[0].role == "system" else ""
    last = info.last
    said = _last_user(info.messages).lower()
    if system.startswith("You are tutor"):
        return call("calculator", expression="6*7") if last.role == "user" else f"6*7 is {last.content}."
    if system.startswith("You are coder"):
        if last.role == "user":
            return call("shell", command="echo approved-ran > marker.txt && echo wrote marker.txt")
        return f"The shell said: {last.content}"
    if system.startswith("You are researcher"):
        await asyncio.sleep(0.6)
        return "Lisbon is sunny in May and has trams."
    if system.startswith("You are writer"):
        await asyncio.sleep(0.6)
        return "Day 1: trams. Day 2: the coast."
    # the supervisor
    if "planning" in system:
        if "write the plan now" in said:
            return call("finish", goal="a trip plan", steps=[
                {"id": "s1", "task": "research Lisbon", "agent": "researcher", "needs": []},
                {"id": "s2", "task": "write the itinerary", "agent": "writer", "needs": ["s1"]}])
        if "call finish with decision" in said:
            return call("finish", decision="keep", reason="on track")
        if "the plan is over" in said:
            return "Here is your Lisbon plan: trams first, then the coast."
    if "worklist" in system:
        if last.role == "user" and "worklist:" not in said and "still open" not in said:
            return [call("add_task", id="research", description="research Lisbon", agent="researcher",
                         priority=2, depends_on=[]),
                    call("add_task", id="write", description="write the itinerary", agent="writer", priority=1,
                         depends_on=["research"])]
        if last.role == "tool" or "[pending]" in said or "[running]" in said or "still open" in said:
            return "Waiting for the tasks."
        return "Both tasks are done: trams first, then the coast."
    if last.role == "tool":
        return f"Done: {last.content}"
    if said.startswith("hello"):
        return "Hello there! I stream my words one by one so you can watch them arrive."
    if said.startswith("compute"):
        return call("tutor", task="compute 6*7")
    if said.startswith("shell"):
        return call("coder", task="write marker.txt with the shell")
    if said.startswith("sleep"):
        await asyncio.sleep(30)
        return "I woke up."
    if said.startswith("fail"):
        raise ModelError("test:chat answered 503 Service Unavailable (a scripted failure)", provider="test",
                         model="chat", status=503)
    return f"You said: {said}"


class SlowStreamingModel(FunctionModel):
    """Streams text a word at a time with a pause, as a real provider does."""

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] = (),
                     output: OutputSpec | None = None,
                     settings: ModelSettings | None = None) -> AsyncIterator[StreamEvent]:
        async for event in super().stream(messages, tools=tools, output=output, settings=settings):
            if isinstance(event, TextDelta):
                await asyncio.sleep(WORD_PAUSE)
            yield event


model = SlowStreamingModel(reply, name="chat")
