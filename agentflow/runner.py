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
from typing import TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


class StepRunner:
    """Runs steps in memory. Subclass to journal them (the result type is given for decoding)."""

    async def step(self, name: str, fn: Callable[[], Awaitable[R]], result_type: type[R]) -> R:
        return await fn()

    def now(self) -> float:
        return time.time()

    def new_id(self) -> str:
        return uuid.uuid4().hex


DEFAULT_RUNNER = StepRunner()
