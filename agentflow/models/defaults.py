"""The model used when none is named: whatever the environment makes available."""

from __future__ import annotations

import logging
import os

from ..core.errors import ConfigError
from .base import Model

OPENAI_DEFAULT = "openai:gpt-4o-mini"
ANTHROPIC_DEFAULT = "anthropic:claude-haiku-4-5"

_chosen: Model | None = None
_said: set[str] = set()
log = logging.getLogger("agentflow.models")


def set_default_model(model: Model | None) -> None:
    """Process-wide: the model of every agent and task that names none, ahead of the environment
    (how `agentflow serve --model` hands a server's targets a model). None goes back to the chain."""
    global _chosen
    _chosen = model


def default_model() -> Model:
    """The model `set_default_model` chose; else `AGENTFLOW_MODEL` if set; else OpenAI when
    `OPENAI_API_KEY` is set; else Anthropic when `ANTHROPIC_API_KEY` is set; else a local model (a
    running server at `AGENTFLOW_LOCAL_URL`, or the first pulled catalog model); otherwise one
    error listing the ways out. A model the chain picked (not one AGENTFLOW_MODEL names) is said
    once per process on the `agentflow.models` logger, with why."""
    from ..local.catalog import DEFAULT_LOCAL
    from . import get_model

    if _chosen is not None:
        return _chosen
    picked = _pick()
    if picked is None:
        raise ConfigError(
            "no model was named and none is available. Fix one of: (1) set OPENAI_API_KEY (uses "
            f"{OPENAI_DEFAULT}); (2) set ANTHROPIC_API_KEY (uses {ANTHROPIC_DEFAULT}); (3) run a model on this "
            f"machine: pip install 'agentflow[local]' && agentflow models pull {DEFAULT_LOCAL}. Or name a model: "
            "model='provider:name', --model, or AGENTFLOW_MODEL"
        )
    name, why = picked
    model = get_model(name)  # names the missing llama-server if that is all a local model lacks
    if why and name not in _said:  # once per process: a run should not be silent about what it runs on
        _said.add(name)
        log.warning("agentflow: no model named; using %s (%s). Name one with model=, --model or AGENTFLOW_MODEL",
                    name, why)
    return model


def _pick() -> tuple[str, str] | None:
    """The default chain's choice and why (empty when AGENTFLOW_MODEL names it), or None."""
    from ..local.catalog import CATALOG, DEFAULT_LOCAL, pulled_path

    if name := os.environ.get("AGENTFLOW_MODEL"):
        return name, ""  # named: nothing to explain
    if os.environ.get("OPENAI_API_KEY"):
        return OPENAI_DEFAULT, "OPENAI_API_KEY is set"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return ANTHROPIC_DEFAULT, "ANTHROPIC_API_KEY is set"
    if url := os.environ.get("AGENTFLOW_LOCAL_URL"):
        return f"local:{DEFAULT_LOCAL}", f"AGENTFLOW_LOCAL_URL is set: the server at {url}"
    for local in CATALOG.values():  # the catalog's order is the order of preference
        if (path := pulled_path(local)) is not None:
            return f"local:{local.name}", f"no API key is set and it is pulled, in {path.parent}"
    return None
