"""The model used when none is named: whatever the environment makes available."""

from __future__ import annotations

import os

from ..errors import ConfigError
from .base import Model

OPENAI_DEFAULT = "openai:gpt-4o-mini"
ANTHROPIC_DEFAULT = "anthropic:claude-haiku-4-5"


def default_model() -> Model:
    """`AGENTFLOW_MODEL` if set, else OpenAI when `OPENAI_API_KEY` is set, else Anthropic when
    `ANTHROPIC_API_KEY` is set; otherwise an error listing the ways out."""
    from . import get_model

    if name := os.environ.get("AGENTFLOW_MODEL"):
        return get_model(name)
    if os.environ.get("OPENAI_API_KEY"):
        return get_model(OPENAI_DEFAULT)
    if os.environ.get("ANTHROPIC_API_KEY"):
        return get_model(ANTHROPIC_DEFAULT)
    raise ConfigError(
        "no model was named and none is configured. Fix one of: pass model='openai:gpt-4o-mini' (or another "
        "'provider:model'); set AGENTFLOW_MODEL; set OPENAI_API_KEY or ANTHROPIC_API_KEY; or set "
        "OPENAI_BASE_URL to a local OpenAI-compatible server and AGENTFLOW_MODEL=openai:<its model name>"
    )
