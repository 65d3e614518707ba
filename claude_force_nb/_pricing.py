"""Estimated cost of a call from a per-model price table."""

from __future__ import annotations

from collections.abc import Mapping

# US dollars per million tokens: (input, output). Users override or extend
# this by passing ``prices=`` to the orchestrator.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
}
# Unknown models are priced like the family they name, else like Sonnet.
FAMILY_PRICES = {"opus": (5.0, 25.0), "sonnet": (3.0, 15.0), "haiku": (1.0, 5.0)}


def price_of(model: str, prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES) -> tuple[float, float]:
    """(input, output) dollars per million tokens for ``model``."""
    if model in prices:
        return prices[model]
    # Dated snapshots ("claude-haiku-4-5-20251001") share their alias's price.
    for name in sorted(prices, key=len, reverse=True):
        if model.startswith(name):
            return prices[name]
    for family, price in FAMILY_PRICES.items():
        if family in model:
            return price
    return FAMILY_PRICES["sonnet"]


def estimate_cost(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, tuple[float, float]] = DEFAULT_PRICES
) -> float:
    """Estimated dollars for one call."""
    price_in, price_out = price_of(model, prices)
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000
