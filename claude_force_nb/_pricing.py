"""Estimated cost of a call from a per-model price table; a model without a price costs "unknown", not a guess.

Input tokens bill at three rates: fresh, written to the prompt cache (a
premium, larger for the one-hour cache) and read from it (a tenth); answers
from the Message Batches API cost half. The multipliers are Anthropic's
published ones; a :class:`Price` in the table can set its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._models import MODELS

# Anthropic's multipliers of the base input price, and the Message Batches discount.
CACHE_WRITE_5M = 1.25
CACHE_WRITE_1H = 2.0
CACHE_READ = 0.1
BATCH_DISCOUNT = 0.5


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens for one model; the cache and batch rates default to Anthropic's multipliers."""

    input: float
    output: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    batch: float = BATCH_DISCOUNT  # what a Message Batches answer costs, as a fraction of the standard price

    def dollars(self, usage: Usage) -> float:
        write_5m = self.input * CACHE_WRITE_5M if self.cache_write_5m is None else self.cache_write_5m
        write_1h = self.input * CACHE_WRITE_1H if self.cache_write_1h is None else self.cache_write_1h
        read = self.input * CACHE_READ if self.cache_read is None else self.cache_read
        total = (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_write_5m * write_5m
            + usage.cache_write_1h * write_1h
            + usage.cache_read * read
        ) / 1_000_000
        return total * self.batch if usage.batch else total


# What a price table may hold for a model: a Price, or (input, output) dollars per million tokens.
PriceEntry = Price | tuple[float, float]
# Dollars for a model's answer from its usage; None when the model has no price.
CostOf = Callable[[str, "Usage"], "float | None"]

# From the model table (Anthropic's pricing pages). Users override or extend this by passing ``prices=``.
DEFAULT_PRICES: dict[str, PriceEntry] = {record.id: record.price for record in MODELS if record.price is not None}
# Models billed at a second price once the prompt passes a size: (prompt tokens, (input, output)).
LONG_PROMPT_PRICES: dict[str, tuple[int, tuple[float, float]]] = {
    record.id: record.long_prompt for record in MODELS if record.long_prompt is not None
}

# A dated snapshot ("claude-haiku-4-5-20251001") costs what its undated id costs.
_SNAPSHOT = re.compile(r"(?P<base>.+)-\d{8}")


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one answer was billed for, by rate; ``batch`` when the Message Batches API answered."""

    input: int = 0  # fresh input, after the last cache breakpoint
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    batch: bool = False

    @classmethod
    def of(cls, usage: Mapping[str, Any] | None) -> Usage:
        """From the API's ``usage`` object; writes without a TTL breakdown count as five-minute ones."""
        usage = usage or {}
        written = _count(usage.get("cache_creation_input_tokens"))
        split = usage.get("cache_creation")
        hour = min(_count(split.get("ephemeral_1h_input_tokens")), written) if isinstance(split, Mapping) else 0
        return cls(
            input=_count(usage.get("input_tokens")),
            output=_count(usage.get("output_tokens")),
            cache_write_5m=written - hour,
            cache_write_1h=hour,
            cache_read=_count(usage.get("cache_read_input_tokens")),
            batch=usage.get("service_tier") == "batch",
        )

    @property
    def prompt(self) -> int:
        """Every input token, whichever rate it billed at."""
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


def price_of(model: str, prices: Mapping[str, PriceEntry] = DEFAULT_PRICES) -> PriceEntry | None:
    """The price table's entry for ``model`` (a dated snapshot finds its undated id), or None."""
    if model in prices:
        return prices[model]
    snapshot = _SNAPSHOT.fullmatch(model)
    if snapshot is not None:
        return prices.get(snapshot["base"])
    return None


def cost_of(model: str, usage: Usage, prices: Mapping[str, PriceEntry] = DEFAULT_PRICES) -> float | None:
    """Estimated dollars for one answer, or None for a model without a price."""
    entry = price_of(model, prices)
    if entry is None:
        return None
    price = entry if isinstance(entry, Price) else Price(*entry)
    snapshot = _SNAPSHOT.fullmatch(model)
    base = snapshot["base"] if snapshot is not None and model not in prices else model
    long = LONG_PROMPT_PRICES.get(base)
    if long is not None and usage.prompt > long[0] and entry == DEFAULT_PRICES.get(base):
        price = Price(*long[1])
    return price.dollars(usage)


def estimate_cost(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, PriceEntry] = DEFAULT_PRICES
) -> float | None:
    """Estimated dollars for plain input and output tokens, or None for a model without a price."""
    return cost_of(model, Usage(input_tokens, output_tokens), prices)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
