"""Checks for the numbers people type (timeouts, limits, temperatures): finite, in range, one line when not.

Each returns the value, normalised, or raises ValueError with a message that
names the setting. NaN fails every check: it compares false with everything,
so a plain ``value <= 0`` test lets it through to places it breaks.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any

# Far beyond any organisation's rate limit: a bound against typos, not a policy.
MAX_CONCURRENCY = 10_000
# Repeats of one ask an evaluation may take (--samples).
MAX_SAMPLES = 100


def seconds(name: str, value: Any, *, infinite: bool = False) -> float:
    """A positive, finite number of seconds (or hours); ``infinite`` also allows inf."""
    number = _number(name, value)
    if not (number > 0 and (math.isfinite(number) or (infinite and number == math.inf))):
        limit = "a positive number (inf allowed)" if infinite else "a positive, finite number"
        raise ValueError(f"{name} must be {limit}, got {value!r}.")
    return number


def delay(name: str, value: Any, *, high: float) -> float:
    """A finite number of seconds from 0 to ``high`` (0 means none)."""
    number = _number(name, value)
    if not 0 <= number <= high:
        raise ValueError(f"{name} must be from 0 to {high:g} seconds, got {value!r}.")
    return number


def count(name: str, value: Any, *, low: int = 1, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    else:
        value = operator.index(value)  # numpy integers too
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high:,}, got {value!r}.")
    return value


def dollars(name: str, value: Any) -> float:
    """A positive, finite amount of money (a budget)."""
    number = _number(name, value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a positive, finite number of dollars, got {value!r}.")
    return number


def fraction(name: str, value: Any) -> float:
    """A finite number from 0 to 1 (temperature, top_p)."""
    number = _number(name, value)
    if not 0 <= number <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}.")
    return number


def sampling(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with temperature, top_p, top_k and stop_sequences checked; a lone stop string becomes a list."""
    checked = dict(params)
    for name in ("temperature", "top_p"):
        if checked.get(name) is not None:
            checked[name] = fraction(name, checked[name])
    if checked.get("top_k") is not None:
        checked["top_k"] = count("top_k", checked["top_k"], low=0)
    stops = checked.get("stop_sequences")
    if stops is not None:
        if isinstance(stops, str):
            stops = [stops]
        if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) and s.strip() for s in stops):
            raise ValueError(f"stop_sequences must be a list of non-blank strings, got {stops!r}.")
        checked["stop_sequences"] = list(stops)
    return checked


def _number(name: str, value: Any) -> float:
    # numpy scalars and Decimals are numbers too; bools and strings are not.
    if isinstance(value, (bool, str, bytes)) or not hasattr(type(value), "__float__"):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    return float(value)
