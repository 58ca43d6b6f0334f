"""Models: `get_model("openai:gpt-4o-mini")`, provider adapters, and the test doubles."""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigError, did_you_mean
from .base import Model, ModelSettings, OutputSpec, ToolChoice, ToolSpec
from .prices import Price
from .retry import RetryPolicy
from .scripted import FunctionModel, RequestInfo, ScriptedModel, call

PROVIDERS = ("openai", "anthropic", "local")
EXAMPLES = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "local": "qwen2.5-coder-1.5b"}


def parse_model_string(model: str) -> tuple[str, str]:
    """(provider, name) of a model string, checked without building a client: an agent defined with a
    misspelt model fails where it is defined, not at its first call (keys may still come later)."""
    if not isinstance(model, str) or ":" not in model:  # pyright: ignore[reportUnnecessaryIsInstance]
        if isinstance(model, str) and (provider := guess_provider(model)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigError(f"model {model!r} names no provider. Fix: write {provider + ':' + model!r}")
        raise ConfigError(
            f"model {model!r} is not a 'provider:model' string. Fix: write e.g. 'openai:gpt-4o-mini' or "
            f"'anthropic:claude-haiku-4-5' or 'local:qwen2.5-coder-1.5b' (known providers: "
            f"{', '.join(PROVIDERS)}), or pass a Model object"
        )
    provider, name = model.split(":", 1)
    if provider not in PROVIDERS:
        raise ConfigError(f"unknown model provider {provider!r}{did_you_mean(provider, PROVIDERS)} in {model!r}. "
                          f"Known providers: {', '.join(PROVIDERS)}")
    if not name.strip():
        raise ConfigError(f"model {model!r} names no model after {provider + ':'!r}. Fix: write e.g. "
                          f"'{provider}:{EXAMPLES[provider]}'")
    return provider, name


def guess_provider(name: str) -> str | None:
    """The provider a bare model name most likely belongs to ("gpt-4o" -> "openai"), if any."""
    lower = name.lower()
    if lower.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
        return "openai"
    if lower.startswith("claude"):
        return "anthropic"
    return "local" if lower.startswith(("qwen", "llama", "gemma", "phi", "mistral")) else None


def get_model(model: str | Model, **options: Any) -> Model:
    """A model from a `provider:name` string (options go to the adapter), or the model itself."""
    if isinstance(model, Model):
        if options:
            raise ConfigError("options can only be given with a model string, not with a model object")
        return model
    provider, name = parse_model_string(model)
    if provider == "openai":
        from .openai import OpenAIModel

        return OpenAIModel(name, **options)
    if provider == "anthropic":
        from .anthropic import AnthropicModel

        return AnthropicModel(name, **options)
    if provider == "local":
        from .local import LocalModel

        return LocalModel(name, **options)
    raise AssertionError(provider)  # parse_model_string knows only these


__all__ = [
    "FunctionModel",
    "Model",
    "ModelSettings",
    "OutputSpec",
    "Price",
    "RequestInfo",
    "RetryPolicy",
    "ScriptedModel",
    "ToolChoice",
    "ToolSpec",
    "call",
    "get_model",
    "parse_model_string",
]
