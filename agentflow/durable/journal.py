"""The durable step runner: every step a DBOS step, replayed by its agentflow name.

DBOS replays a workflow's steps by position (the n-th step started gets the n-th recorded
result). Agent trees and workflows start steps concurrently, in an order that depends on
timing, so positions are not stable across a crash. Names are: every step agentflow takes has
a unique, stable name (`supervisor/counter/model/3`, `trip/distance/python`). So the runner
reads the run's recorded steps once, answers known names from them, and runs new steps as DBOS
steps at positions past everything recorded. DBOS still does the storing, the recovery and the
waiting; only the lookup is by name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dbos import DBOS, StepInfo
from pydantic import BaseModel, ValidationError

from ..human import HumanReply, HumanRequest
from ..runner import StepRunner

R = TypeVar("R", bound=BaseModel)

WAITING = "agentflow.waiting"  # the event holding the run's open questions, read by `runs show`
FOREVER = 10 * 365 * 24 * 3600.0


class Stamp(BaseModel):
    at: float


def read_journal(steps: list[StepInfo]) -> tuple[dict[str, Any], int]:
    """Recorded outputs by step name, and the highest position used. A reply to a human wait is
    found by the wait name it carries, even if the run died before journaling it under that name."""
    journal: dict[str, Any] = {}
    for s in steps:
        if s["error"] is not None:
            continue
        name, out = s["function_name"], s["output"]
        if name == "DBOS.recv":
            if isinstance(out, dict) and isinstance(out.get("wait"), str):
                journal[out["wait"]] = out.get("reply")  # type: ignore[index]
        elif not name.startswith("DBOS."):
            journal[name] = out
    return journal, max((s["function_id"] for s in steps), default=-1)


class DurableRunner(StepRunner):
    """Runs steps inside one DBOS workflow (the durable run)."""

    def __init__(self, run_id: str, journal: dict[str, Any]) -> None:
        self.run_id, self.journal = run_id, journal
        self.replayed = 0
        self.waiting: dict[str, dict[str, Any]] = {}

    async def step(self, name: str, fn: Callable[[], Awaitable[R]], result_type: type[R]) -> R:
        if name in self.journal:
            self.replayed += 1
            return result_type.model_validate(self.journal[name])
        kept: list[R] = []

        async def run() -> Any:
            value = await fn()
            kept.append(value)
            return value.model_dump(mode="json")

        out = await DBOS.run_step_async({"name": name, "retries_allowed": False}, run)
        return kept[0] if kept else result_type.model_validate(out)

    async def wait(self, name: str, request: HumanRequest) -> HumanReply:
        """Pause until a reply arrives on topic `name` (sent by `DurableRun.reply`), or the timeout."""
        if name in self.journal:
            self.replayed += 1
            return HumanReply.model_validate(self.journal[name])
        asked = await self.step(f"{name}/asked", _stamp, Stamp)  # the deadline survives restarts
        deadline = None if request.timeout is None else asked.at + request.timeout
        self.waiting[name] = {"name": name, "asked_at": asked.at, **request.model_dump(mode="json")}
        await DBOS.set_event_async(WAITING, list(self.waiting.values()))
        reply = await self._receive(name, request, deadline)
        del self.waiting[name]  # not on cancellation: a run stopped mid-wait still waits when it resumes
        await DBOS.set_event_async(WAITING, list(self.waiting.values()))
        return reply

    async def _receive(self, name: str, request: HumanRequest, deadline: float | None) -> HumanReply:
        while True:
            left = FOREVER if deadline is None else deadline - time.time()
            message = await DBOS.recv_async(name, left) if left > 0 else None
            if message is None:
                fallback = request.default or HumanReply(reason="no answer in time")
                timed_out = fallback.model_copy(update={"timed_out": True})
                return await self.step(name, lambda reply=timed_out: _value(reply), HumanReply)
            try:
                return HumanReply.model_validate(message["reply"])
            except (ValidationError, KeyError, TypeError):
                DBOS.logger.warning(f"run {self.run_id}: ignored a malformed reply to {name}: {message!r}")


async def _stamp() -> Stamp:
    return Stamp(at=time.time())


async def _value(value: R) -> R:
    return value
