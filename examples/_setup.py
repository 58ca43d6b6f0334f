"""Model selection shared by the examples: a real provider when one is configured.

--model provider:name         e.g. openai:gpt-4o-mini, anthropic:claude-haiku-4-5
--base-url URL                an OpenAI-compatible server, e.g. llama-server on http://127.0.0.1:8080/v1
--constrained                 grammar-constrained tool calls, for small local models
Environment: AGENTFLOW_MODEL, OPENAI_API_KEY, ANTHROPIC_API_KEY, OPENAI_BASE_URL; with none of them, a
pulled local model (`agentflow models pull qwen2.5-coder-1.5b`), else offline stand-ins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from agentflow import ConfigError, FunctionModel, Model, get_model
from agentflow.models.defaults import default_model
from agentflow.models.scripted import ReplyFunction


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=os.environ.get("AGENTFLOW_MODEL"), help="provider:model")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server URL (sets OPENAI_BASE_URL)")
    p.add_argument("--constrained", action="store_true", help="grammar-constrained tool calls (small local models)")
    return p


def model_from(args: argparse.Namespace) -> Model:
    """The model the command line or the environment names; ConfigError explains when there is none."""
    if args.base_url:
        os.environ["OPENAI_BASE_URL"] = args.base_url
        name = args.model or "openai:local"
    else:
        name = args.model
    if name is None:
        return default_model()
    options = {"tool_calling": "constrained"} if args.constrained and name.startswith("openai:") else {}
    return get_model(name, **options)


def models_for(args: argparse.Namespace, stand_ins: Mapping[str, ReplyFunction]) -> dict[str, Model]:
    """A model for each role: the configured one for all, or else each role's offline stand-in."""
    try:
        return dict.fromkeys(stand_ins, model_from(args))
    except ConfigError as e:
        print(f"(using an offline stand-in for each agent, because {_first_sentence(e)}; see README to use a real "
              "model)\n")
        return {role: FunctionModel(fn, name=f"stand-in-{role}") for role, fn in stand_ins.items()}


def model_or_stand_in(args: argparse.Namespace, stand_in: ReplyFunction) -> Model:
    """The configured model, or else an offline stand-in that plays the same protocol (and says so)."""
    try:
        return model_from(args)
    except ConfigError as e:
        print(f"(using an offline stand-in model, because {_first_sentence(e)}; see README to use a real model)\n")
        return FunctionModel(stand_in, name="stand-in")


def _first_sentence(error: ConfigError) -> str:
    return str(error).split(". Fix", 1)[0]
