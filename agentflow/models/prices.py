"""Prices of known models, in US dollars per million tokens, so runs report what they cost.

Unknown models cost `None` (shown as unknown, never as free). Pass `prices=` to a model to set
your own (e.g. for a fine-tune, or when a provider changes its list)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..core.messages import Usage


class Price(BaseModel):
    model_config = ConfigDict(frozen=True)

    input: float
    output: float
    cache_read: float | None = None  # defaults to `input` when None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        plain = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        return (plain * self.input + usage.cache_read_tokens * read + usage.cache_write_tokens * write
                + usage.output_tokens * self.output) / 1_000_000


# Longest prefix wins, so dated snapshots ("gpt-4o-2024-08-06") find their family.
PRICES: dict[str, Price] = {
    "openai:gpt-5-nano": Price(input=0.05, output=0.40, cache_read=0.005),
    "openai:gpt-5-mini": Price(input=0.25, output=2.00, cache_read=0.025),
    "openai:gpt-5": Price(input=1.25, output=10.00, cache_read=0.125),
    "openai:gpt-4.1-nano": Price(input=0.10, output=0.40, cache_read=0.025),
    "openai:gpt-4.1-mini": Price(input=0.40, output=1.60, cache_read=0.10),
    "openai:gpt-4.1": Price(input=2.00, output=8.00, cache_read=0.50),
    "openai:gpt-4o-mini": Price(input=0.15, output=0.60, cache_read=0.075),
    "openai:gpt-4o": Price(input=2.50, output=10.00, cache_read=1.25),
    "openai:o4-mini": Price(input=1.10, output=4.40, cache_read=0.275),
    "openai:o3-mini": Price(input=1.10, output=4.40, cache_read=0.55),
    "openai:o3": Price(input=2.00, output=8.00, cache_read=0.50),
    "anthropic:claude-haiku-4-5": Price(input=1.00, output=5.00, cache_read=0.10, cache_write=1.25),
    "anthropic:claude-sonnet-4-5": Price(input=3.00, output=15.00, cache_read=0.30, cache_write=3.75),
    "anthropic:claude-sonnet-4": Price(input=3.00, output=15.00, cache_read=0.30, cache_write=3.75),
    "anthropic:claude-opus-4-5": Price(input=5.00, output=25.00, cache_read=0.50, cache_write=6.25),
    "anthropic:claude-opus-4-1": Price(input=15.00, output=75.00, cache_read=1.50, cache_write=18.75),
    "anthropic:claude-3-5-haiku": Price(input=0.80, output=4.00, cache_read=0.08, cache_write=1.00),
}


def find_price(name: str) -> Price | None:
    """The price for `provider:model`, by longest matching prefix."""
    best = max((key for key in PRICES if name.startswith(key)), key=len, default=None)
    return PRICES[best] if best else None
