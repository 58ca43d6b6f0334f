"""Errors a user can meet. Each message names the thing that is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import RunResult, StopReason


class AgentflowError(Exception):
    """Base of every error agentflow raises on purpose. `result`: what the run it ended had
    finished (a `RunResult`, `WorkflowResult` or `ConversationResult`), when it ended one."""

    result: Any = None


def keep_partial(exc: BaseException, result: Any) -> None:
    """Let `result` (what a run finished) ride on an exception leaving the run, whatever its type:
    a provider's error, a cancellation, a bug in a user's callback. Read it with `partial_of`."""
    exc.result = result  # type: ignore[attr-defined]  # any exception; the one place that sets it


def partial_of(exc: BaseException) -> Any:
    """What the run an exception left had finished (`keep_partial`), or None."""
    return getattr(exc, "result", None)


class StopRun(Exception):
    """Ends a run with a reason and the history intact: raised for limits and the loop guard, by the
    loop's hooks that must stop the run, and by a supervisor's modes (a refused plan). Caught by the
    run itself, which returns its best-effort result; it never reaches the caller."""

    def __init__(self, reason: StopReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: StopReason = reason
        self.detail = detail


class ConfigError(AgentflowError):
    """Bad configuration: an unknown model string, a missing API key, a bad argument."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the choice closest to a misspelt `word`, or ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def all_at_once(problems: Sequence[str]) -> str:
    """One message for every mistake found, so that a user fixes them in one go, not one a run."""
    return problems[0] if len(problems) == 1 else f"{len(problems)} mistakes:\n" + "\n".join(f"- {p}" for p in problems)


class ToolDefinitionError(AgentflowError):
    """A function that cannot be turned into a tool (e.g. a parameter without a type hint)."""


class ModelError(AgentflowError):
    """A model call that failed for good (after retries, or a non-retryable error)."""

    def __init__(self, message: str, *, provider: str, model: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status


class OutputValidationError(AgentflowError):
    """The model kept calling `finish` with arguments that fail the output schema.

    `result` holds everything the run produced before giving up (messages, steps, usage),
    so nothing already paid for is lost."""

    def __init__(self, message: str, result: RunResult[Any]) -> None:
        super().__init__(message)
        self.result = result
