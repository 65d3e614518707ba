"""Checks for the numbers people type (timeouts, limits, temperatures): finite, in range, one line when not.

Each returns the value, normalised, or raises ValueError with a message that
names the setting. NaN fails every check: it compares false with everything,
so a plain ``value <= 0`` test lets it through to places it breaks.
"""

from __future__ import annotations

import math
from typing import Any

# Far beyond any organisation's rate limit: a bound against typos, not a policy.
MAX_CONCURRENCY = 10_000


def seconds(name: str, value: Any, *, infinite: bool = False) -> float:
    """A positive, finite number of seconds (or hours); ``infinite`` also allows inf."""
    number = _number(name, value)
    if not (number > 0 and (math.isfinite(number) or (infinite and number == math.inf))):
        limit = "a positive number (inf allowed)" if infinite else "a positive, finite number"
        raise ValueError(f"{name} must be {limit}, got {value!r}.")
    return number


def count(name: str, value: Any, *, low: int = 1, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"{name} must be a whole number, got {value!r}.")
        value = int(value)
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high:,}, got {value!r}.")
    return value


def fraction(name: str, value: Any) -> float:
    """A finite number from 0 to 1 (temperature, top_p)."""
    number = _number(name, value)
    if not 0 <= number <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}.")
    return number


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    return float(value)
