"""The event log: a durable run's events kept in the database as they happen.

A client of `agentflow serve` may start watching a run late, or again after the server was
restarted, so a run's events (the same ones `stream()` yields) are written to a table and read
back from it. One writer per process writes what all runs published in a turn of the event
loop in one statement: under load, one transaction for many runs' events. A resumed run
replays its finished steps and so publishes their events again: its writer drops each one the
log already holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import Any

from ..core.events import Event
from .codec import jsonable
from .store import StepStore

log = logging.getLogger("agentflow.durable")
VOLATILE = frozenset({"seconds", "started"})  # fields a replayed step does not repeat exactly (its times)
UNREPLAYED = frozenset({"text"})  # kinds a replay never publishes (a journaled reply is not streamed again)


def _signature(data: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in data.items() if k not in VOLATILE}, sort_keys=True)


class EventWriter:
    """Numbers the events of one execution of a run for the log; `emit` is the run's listener."""

    def __init__(self, log: EventLog, run_id: str, last: int, seen: Counter[str]) -> None:
        self.log, self.run_id, self.seq, self.seen = log, run_id, last, seen

    def emit(self, event: Event) -> None:
        if self.seen:  # a resumed run: drop what an earlier execution published
            data = jsonable(event)
            if data.get("kind") not in UNREPLAYED and self.seen[signature := _signature(data)] > 0:
                self.seen[signature] -= 1
                return
        self.seq += 1
        self.log.put(self.run_id, self.seq, event.model_dump_json(fallback=repr))

    async def close(self) -> None:
        """Write what is still pending (the run has ended or is being stopped)."""
        await self.log.flush()
        self.log.written.pop(self.run_id, None)


class EventLog:
    """The event table of one database, and in-process wake-ups for its readers."""

    def __init__(self, store: StepStore) -> None:
        self.store = store
        self.written: dict[str, int] = {}  # the last number written, per run executing in this process
        self.pending: list[tuple[str, int, str]] = []
        self.flushing: asyncio.Task[None] | None = None
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def put(self, run_id: str, seq: int, text: str) -> None:
        self.pending.append((run_id, seq, text))
        if self.flushing is None:  # one flusher at a time, so the log never holds a gap a reader could skip
            self.flushing = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await self.store.add_events(batch)
                except Exception as e:  # the runs go on: their events are only a view of them
                    log.warning("agentflow: %d events could not be written to the event log: %s", len(batch), e)
                for run_id, seq in {run_id: seq for run_id, seq, _ in batch}.items():
                    self.notify(run_id, seq)
        finally:
            self.flushing = None

    async def flush(self) -> None:
        """Return when everything put so far is written."""
        while self.flushing is not None:
            await asyncio.shield(self.flushing)
        await self._drain()

    async def writer(self, run_id: str) -> EventWriter:
        """A writer that continues the run's log (after its last number, dropping replays of what it holds)."""
        held = await self.store.load_events(run_id)
        seen = Counter(_signature(data) for _, text in held
                       if (data := json.loads(text)).get("kind") not in UNREPLAYED)
        return EventWriter(self, run_id, held[-1][0] if held else 0, seen)

    async def read(self, run_id: str, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        return [(seq, json.loads(text)) for seq, text in await self.store.load_events(run_id, after)]

    def notify(self, run_id: str, seq: int) -> None:
        self.written[run_id] = seq
        for loop, future in self._waiters.pop(run_id, ()):
            loop.call_soon_threadsafe(_settle, future)

    async def changed(self, run_id: str, timeout: float, *also: asyncio.Future[Any], after: int | None = None) -> None:
        """Return when this process writes new events of the run (at once if it wrote any numbered above
        `after`), any of `also` is done, or after `timeout`."""
        if after is not None and self.written.get(run_id, 0) > after:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.setdefault(run_id, []).append((loop, future))
        try:
            await asyncio.wait([future, *also], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None and (loop, future) in waiters:
                waiters.remove((loop, future))
                if not waiters:
                    del self._waiters[run_id]


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
