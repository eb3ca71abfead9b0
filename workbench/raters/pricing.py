"""What a rating job costs: a price table in US dollars per million tokens, and estimates.

The table holds OpenAI's published list prices for the models norming studies
use (checked 2025; prices change: give a rater ``price: {input, output}`` to
override). Fine-tuned models (``ft:BASE:...``) are priced as their base's
fine-tuned rate. The Batch API costs half.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

# model prefix -> (input, output) USD per 1M tokens
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "ft:gpt-4o-mini": (0.30, 1.20),
    "ft:gpt-4o": (3.75, 15.00),
    "ft:gpt-4.1-nano": (0.20, 0.80),
    "ft:gpt-4.1-mini": (0.80, 3.20),
    "ft:gpt-4.1": (3.00, 12.00),
}
BATCH_DISCOUNT = 0.5
CHARS_PER_TOKEN = 4.0  # a rough rule for English prompts, used only for estimates


class Price(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)


@dataclass(frozen=True)
class Rate:
    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


def price_of(model: str, *, override: Price | None = None, batch: bool = False) -> Rate | None:
    """The price of a model (longest matching prefix of the table), or None when unknown."""
    if override is not None:
        rate = (override.input, override.output)
    else:
        matches = [p for p in PRICES if model == p or model.startswith(p + "-") or model.startswith(p + ":")]
        if not matches:
            return None
        rate = PRICES[max(matches, key=len)]
    factor = BATCH_DISCOUNT if batch else 1.0
    return Rate(rate[0] * factor, rate[1] * factor)


def estimate_tokens(text: str) -> int:
    """A rough token count of a prompt (characters / 4, plus message overhead)."""
    return int(len(text) / CHARS_PER_TOKEN) + 8
