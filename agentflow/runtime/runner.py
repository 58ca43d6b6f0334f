"""The one seam every model call and tool call passes through.

The agent loop never awaits a model or a tool directly: it asks the step runner. The default
runner just runs the step; the durable runtime journals each step by name, so a resumed run
replays finished steps instead of paying for them again. Clocks and ids live here too, so a
replayed run sees the same values.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import BaseModel

from ..core.binding import bound
from .requests import HumanNeeded, HumanReply, HumanRequest

R = TypeVar("R", bound=BaseModel)
TRACE_NOTE = "agentflow.trace"  # a durable run's note of its first attempt's span (no step can have this name)


class StepRunner:
    """Runs steps in memory. Subclass to journal them (the result type is given for decoding)."""

    def step(self, name: str, fn: Callable[[], Awaitable[R]], result_type: type[R]) -> Awaitable[R]:
        return fn()  # not awaited here: one frame fewer held per step in flight

    async def wait(self, name: str, request: HumanRequest) -> HumanReply:
        """Wait for a human's reply. In memory no one can be asked: the request's default is the reply."""
        if request.default is not None:
            return request.default.model_copy(update={"timed_out": True})
        raise HumanNeeded(f"{request.agent or 'the run'} asked a human: {request.question!r}, but a run in memory "
                          "cannot wait for one. Fix: run it durably (agentflow.durable), or give the question a "
                          "default")

    def note(self, name: str, value: dict[str, Any]) -> Any:
        """What an earlier attempt of this run noted under `name`, else None, noting `value` for later
        attempts (a trace links a resumed run to its first attempt so). In memory there are none."""
        return None

    def now(self) -> float:
        return time.time()

    def new_id(self) -> str:
        return uuid.uuid4().hex


DEFAULT_RUNNER = StepRunner()


_current: ContextVar[StepRunner | None] = ContextVar("agentflow_runner", default=None)


def ambient_runner() -> StepRunner:
    """The runner a new top-level run uses when none is given."""
    return _current.get() or DEFAULT_RUNNER


def using(runner: StepRunner) -> AbstractContextManager[StepRunner]:
    """Runs started here (at top level) use `runner`: how the durable runtime wraps any run."""
    return bound(_current, runner)
