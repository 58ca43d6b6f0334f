"""Budgets: steps, tokens, cost and wall time, checked in one place and shared down a tree.

A `Budget` may have a parent: usage charged to a child is charged to every ancestor, and a
child is exhausted as soon as any ancestor is, so a supervisor's budget bounds its whole tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .errors import ConfigError
from .messages import Usage

LimitReason = Literal["max_steps", "max_tokens", "max_cost", "max_time"]


class Limits(BaseModel):
    """What a run may spend. `None` means unbounded. A step is one model call; a budget counts the
    steps, tokens, cost and time of its whole subtree of agents."""

    model_config = ConfigDict(frozen=True)

    max_steps: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    max_seconds: float | None = None

    @model_validator(mode="after")
    def _positive(self) -> Limits:
        if bad := [f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None and v <= 0]:
            raise ConfigError(f"Limits({', '.join(bad)}): a limit must be above 0. Fix: give a positive value, or "
                              "None (the default) for no limit")
        return self


class Budget:
    """The running account of one run against its `Limits` (and its parent's)."""

    def __init__(self, limits: Limits | None = None, parent: Budget | None = None) -> None:
        self.limits = limits or Limits()
        self.parent = parent
        self.usage = Usage()
        self.steps = 0
        self._start = time.monotonic()

    def child(self, limits: Limits | None = None) -> Budget:
        """A budget for a sub-run: its own limits, and everything charged also lands here."""
        return Budget(limits, parent=self)

    def charge(self, usage: Usage) -> None:
        budget: Budget | None = self
        while budget is not None:
            budget.usage = budget.usage + usage
            budget = budget.parent

    def count_step(self) -> None:
        budget: Budget | None = self
        while budget is not None:
            budget.steps += 1
            budget = budget.parent

    def exceeded(self) -> tuple[LimitReason, str] | None:
        """The first limit reached here or in an ancestor, with a sentence saying which."""
        budget: Budget | None = self
        while budget is not None:
            found = budget._own_exceeded()
            if found:
                return found
            budget = budget.parent
        return None

    def remaining_seconds(self) -> float | None:
        """Seconds left before the tightest wall-time limit in the chain (None: no limit; never below 0)."""
        now = time.monotonic()
        return self._left(lambda b: b.limits.max_seconds, lambda b: now - b._start)

    def share(self, fraction: float) -> Limits:
        """Limits for a child that may spend `fraction` of what is left here and in every ancestor."""
        if not 0 < fraction <= 1:
            raise ValueError(f"a budget share must be in (0, 1], got {fraction}")
        steps = self._left(lambda b: b.limits.max_steps, lambda b: b.steps)
        tokens = self._left(lambda b: b.limits.max_tokens, lambda b: b.usage.total_tokens)
        cost = self._left(lambda b: b.limits.max_cost, lambda b: b.usage.cost or 0.0)
        seconds = self.remaining_seconds()
        return Limits(
            max_steps=None if steps is None else max(1, int(steps * fraction)),
            max_tokens=None if tokens is None else max(1, int(tokens * fraction)),
            max_cost=None if cost is None else max(cost * fraction, 1e-9),  # spent: the ancestors stop it
            max_seconds=None if seconds is None else max(seconds * fraction, 1e-3),
        )

    def _left(self, limit: Callable[[Budget], float | None], used: Callable[[Budget], float]) -> float | None:
        left: float | None = None
        budget: Budget | None = self
        while budget is not None:
            cap = limit(budget)
            if cap is not None:
                mine = max(cap - used(budget), 0)
                left = mine if left is None else min(left, mine)
            budget = budget.parent
        return left

    def _own_exceeded(self) -> tuple[LimitReason, str] | None:
        lim, use = self.limits, self.usage
        if lim.max_steps is not None and self.steps >= lim.max_steps:
            return "max_steps", f"reached max_steps={lim.max_steps}"
        if lim.max_tokens is not None and use.total_tokens >= lim.max_tokens:
            return "max_tokens", f"used {use.total_tokens} tokens of max_tokens={lim.max_tokens}"
        if lim.max_cost is not None and (use.cost or 0.0) >= lim.max_cost:
            return "max_cost", f"spent ${use.cost or 0.0:.4f} of max_cost=${lim.max_cost}"
        if lim.max_seconds is not None and time.monotonic() - self._start >= lim.max_seconds:
            return "max_time", f"ran for more than max_seconds={lim.max_seconds}"
        return None
