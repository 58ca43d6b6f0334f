"""Errors a user can meet. Each message names the thing that is wrong and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import RunResult


class AgentflowError(Exception):
    """Base of every error agentflow raises on purpose."""


class ConfigError(AgentflowError):
    """Bad configuration: an unknown model string, a missing API key, a bad argument."""


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
