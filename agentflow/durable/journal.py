"""The durable step runner: every step journaled by its agentflow name, and replayed by it.

DBOS replays a workflow's steps by position (the n-th step started gets the n-th recorded
result). Agent trees and workflows start steps concurrently, in an order that depends on
timing, so positions are not stable across a crash. Names are: every step agentflow takes has
a unique, stable name (`supervisor/counter/model/3`, `trip/distance/python`). So the runner
reads the run's journal once, answers known names from it, and records each new step in the
step table (store.py) when it finishes. DBOS does the rest: recovery, waiting and replies.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from dbos import DBOS, StepInfo
from dbos._error import DBOSWorkflowCancelledError  # not re-exported; DBOS ends a cancelled run on it
from pydantic import BaseModel, ValidationError

from ..core.events import Emit
from ..runtime.requests import HumanAnswered, HumanAsked, HumanReply, HumanRequest
from ..runtime.runner import StepRunner
from .store import StepRow, StepStore

R = TypeVar("R", bound=BaseModel)

WAITING = "agentflow.waiting"  # the event holding the run's open questions, read by `runs show`
FOREVER = 10 * 365 * 24 * 3600.0


class Stamp(BaseModel):
    at: float


def read_journal(rows: list[StepRow], dbos_steps: list[StepInfo]) -> tuple[dict[str, Any], int]:
    """Recorded outputs by step name, and the highest DBOS position used. A reply to a human wait
    is found by the wait name it carries, even if the run died before journaling it under that name."""
    journal: dict[str, Any] = {}
    for s in dbos_steps:
        out = s["output"]
        if s["error"] is None and s["function_name"] == "DBOS.recv" and isinstance(out, dict) \
                and isinstance(out.get("wait"), str) and "reply" in out:  # not a cancel's wake-up call
            journal[out["wait"]] = out.get("reply")  # type: ignore[index]
    journal.update((r.name, r.output) for r in rows if r.error is None)
    return journal, max((s["function_id"] for s in dbos_steps), default=-1)


class DurableRunner(StepRunner):
    """Runs steps inside one DBOS workflow (the durable run). `emit` hears of its human waits."""

    def __init__(self, run_id: str, journal: dict[str, Any], store: StepStore, emit: Emit | None = None) -> None:
        self.run_id, self.journal, self.store, self.emit = run_id, journal, store, emit
        self.began = time.time()  # a cancel sent before this attempt began was for an earlier one
        self.replayed = 0
        self.waiting: dict[str, dict[str, Any]] = {}
        self._notes: set[asyncio.Future[bool]] = set()  # writes in flight (held: the loop keeps weak references)

    async def step(self, name: str, fn: Callable[[], Awaitable[R]], result_type: type[R]) -> R:
        if name in self.journal:
            self.replayed += 1
            return result_type.model_validate(self.journal[name])
        started = time.time()
        try:
            value = await fn()
        except Exception as e:  # recorded for `runs show`; a resumed run takes the step again
            with suppress(Exception):  # the step's own error is the one to raise
                await self.store.record(self.run_id, name, None, f"{type(e).__name__}: {e}", started, time.time())
            raise
        if not await self.store.record(self.run_id, name, value.model_dump_json(), None, started, time.time()):
            raise DBOSWorkflowCancelledError(f"run {self.run_id} was cancelled")  # as DBOS's own steps do
        return value

    def note(self, name: str, value: dict[str, Any]) -> Any:
        """The value an earlier attempt noted under `name` (its journal has it), or None, writing `value`
        to the step table now, without waiting for it (a crash before the write only loses the note)."""
        if name in self.journal:
            return self.journal[name]
        self.journal[name] = value
        at = time.time()
        write = asyncio.ensure_future(self.store.record(self.run_id, name, json.dumps(value), None, at, at))
        self._notes.add(write)
        write.add_done_callback(self._noted)
        return None

    def _noted(self, write: asyncio.Future[bool]) -> None:
        self._notes.discard(write)
        if not write.cancelled() and (e := write.exception()) is not None:
            DBOS.logger.warning(f"agentflow: run {self.run_id}: a note could not be written: {e}")

    async def wait(self, name: str, request: HumanRequest) -> HumanReply:
        """Pause until a reply arrives on topic `name` (sent by `DurableRun.reply`), or the timeout."""
        if name in self.journal:
            self.replayed += 1
            self.waiting.pop(name, None)  # answered before a crash that left it listed as open
            return HumanReply.model_validate(self.journal[name])
        asked = await self.step(f"{name}/asked", _stamp, Stamp)  # the deadline survives restarts
        deadline = None if request.timeout is None else asked.at + request.timeout
        self.waiting[name] = {"name": name, "asked_at": asked.at, **request.model_dump(mode="json")}
        if self.emit is not None:  # as soon as it is open (waiting() here answers from self.waiting)
            self.emit(HumanAsked(agent=request.agent, name=name, request=request, asked_at=asked.at))
        await DBOS.set_event_async(WAITING, list(self.waiting.values()))
        reply = await self._receive(name, request, deadline)
        del self.waiting[name]  # not on cancellation: a run stopped mid-wait still waits when it resumes
        await DBOS.set_event_async(WAITING, list(self.waiting.values()))
        if self.emit is not None:
            self.emit(HumanAnswered(agent=request.agent, name=name, reply=reply))
        return reply

    async def _receive(self, name: str, request: HumanRequest, deadline: float | None) -> HumanReply:
        while True:
            left = FOREVER if deadline is None else deadline - time.time()
            message = await DBOS.recv_async(name, left) if left > 0 else None
            if message is None:
                fallback = request.default or HumanReply(reason="no answer in time")
                timed_out = fallback.model_copy(update={"timed_out": True})
                return await self.step(name, lambda reply=timed_out: _value(reply), HumanReply)
            if isinstance(message, dict) and "cancel" in message:  # sent by DurableRun.cancel to wake the wait
                if float(message["cancel"]) >= self.began:
                    raise DBOSWorkflowCancelledError(f"run {self.run_id} was cancelled")
                continue
            try:
                return HumanReply.model_validate(message["reply"])
            except (ValidationError, KeyError, TypeError):
                DBOS.logger.warning(f"run {self.run_id}: ignored a malformed reply to {name}: {message!r}")


async def _stamp() -> Stamp:
    return Stamp(at=time.time())


async def _value(value: R) -> R:
    return value
