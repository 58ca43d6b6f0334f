"""The model used when none is named: whatever the environment makes available."""

from __future__ import annotations

import os

from ..core.errors import ConfigError
from .base import Model

OPENAI_DEFAULT = "openai:gpt-4o-mini"
ANTHROPIC_DEFAULT = "anthropic:claude-haiku-4-5"

_chosen: Model | None = None


def set_default_model(model: Model | None) -> None:
    """Process-wide: the model of every agent and task that names none, ahead of the environment
    (how `agentflow serve --model` hands a server's targets a model). None goes back to the chain."""
    global _chosen
    _chosen = model


def default_model() -> Model:
    """The model `set_default_model` chose; else `AGENTFLOW_MODEL` if set; else OpenAI when
    `OPENAI_API_KEY` is set; else Anthropic when `ANTHROPIC_API_KEY` is set; else a local model (a
    running server at `AGENTFLOW_LOCAL_URL`, or the first pulled catalog model); otherwise one
    error listing the ways out."""
    from ..local.catalog import CATALOG, DEFAULT_LOCAL, pulled_path
    from . import get_model

    if _chosen is not None:
        return _chosen
    if name := os.environ.get("AGENTFLOW_MODEL"):
        return get_model(name)
    if os.environ.get("OPENAI_API_KEY"):
        return get_model(OPENAI_DEFAULT)
    if os.environ.get("ANTHROPIC_API_KEY"):
        return get_model(ANTHROPIC_DEFAULT)
    if os.environ.get("AGENTFLOW_LOCAL_URL"):
        return get_model(f"local:{DEFAULT_LOCAL}")
    for local in CATALOG.values():  # the catalog's order is the order of preference
        if pulled_path(local) is not None:
            return get_model(f"local:{local.name}")  # names the missing llama-server if that is all that lacks
    raise ConfigError(
        "no model was named and none is available. Fix one of: (1) set OPENAI_API_KEY (uses "
        f"{OPENAI_DEFAULT}); (2) set ANTHROPIC_API_KEY (uses {ANTHROPIC_DEFAULT}); (3) run a model on this "
        f"machine: pip install 'agentflow[local]' && agentflow models pull {DEFAULT_LOCAL}. Or name a model: "
        "model='provider:name', --model, or AGENTFLOW_MODEL"
    )
