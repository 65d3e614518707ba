"""Estimated cost of a call from a per-model price table; a model without a price costs "unknown", not a guess."""

from __future__ import annotations

import re
from collections.abc import Mapping

# US dollars per million tokens: (input, output), from Anthropic's pricing pages.
# Users override or extend this by passing ``prices=`` to the orchestrator.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-fable-5-1": (10.0, 50.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-haiku-5-5": (0.10, 0.50),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
}
# Models billed at a second price once the prompt passes a size: (prompt tokens, (input, output)).
LONG_PROMPT_PRICES: dict[str, tuple[int, tuple[float, float]]] = {
    "claude-haiku-5-5": (100_000, (0.50, 2.50)),
}

# A dated snapshot ("claude-haiku-4-5-20251001") costs what its undated id costs.
_SNAPSHOT = re.compile(r"(?P<base>.+)-\d{8}")


def price_of(model: str, prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens for ``model``, or None when it has no price."""
    if model in prices:
        return prices[model]
    snapshot = _SNAPSHOT.fullmatch(model)
    if snapshot is not None:
        return prices.get(snapshot["base"])
    return None


def estimate_cost(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES
) -> float | None:
    """Estimated dollars for one call, or None for a model without a price."""
    price = price_of(model, prices)
    if price is None:
        return None
    long = LONG_PROMPT_PRICES.get(model)
    if long is not None and input_tokens > long[0] and price == DEFAULT_PRICES.get(model):
        price = long[1]
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
