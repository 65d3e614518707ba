"""A Python check: ``f(answer, item)`` from the user's code, turned into a score.

A check returns a bool (pass or fail), a number (a score from 0 to 1,
passing from 0.5) or a dict with any of ``score``, ``passed`` and
``reason``. An ``AssertionError`` is a fail with its message; any other
exception is the check's own error, kept as one and never raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

from .._results import AgentResult, Score

# A number a check returns passes from here.
PASS_FROM = 0.5


@dataclass(frozen=True)
class Check:
    """A scorer from a function ``f(answer, item)``; ``answer`` is the parsed value with a schema, else the text."""

    function: Callable[[Any, Any], Any]
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(f"A check must be a function f(answer, item), not {type(self.function).__name__}.")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", type(self.function).__name__))

    def __call__(self, result: AgentResult) -> Score:
        answer = result.parsed if result.parsed is not None else result.output
        try:
            value = self.function(answer, result.item)
        except AssertionError as exc:
            # Its first line: the message a table shows (pytest adds its own explanation below it).
            return Score(self.name, 0.0, False, str(exc).strip().split("\n")[0] or "assertion failed")
        except Exception as exc:  # the check's own bug: shown as its error, never the sweep's crash
            return Score(self.name, None, None, error=f"{type(exc).__name__}: {exc}")
        try:
            return verdict(self.name, value)
        except (TypeError, ValueError) as exc:
            return Score(self.name, None, None, error=str(exc))


def verdict(name: str, value: Any) -> Score:
    """The score a check's return value means; TypeError or ValueError for one it cannot mean."""
    if getattr(value, "shape", None) == () and getattr(getattr(value, "dtype", None), "kind", "") == "b":
        value = bool(value)  # numpy's bool (np.isclose, (a == b).all()) is neither a bool nor a number
    if isinstance(value, bool):
        return Score(name, float(value), value)
    if isinstance(value, Real):
        return Score(name, _unit(value), float(value) >= PASS_FROM)
    if isinstance(value, Mapping):
        unknown = set(value) - {"score", "passed", "reason"}
        if unknown:
            raise ValueError(f"returned a dict with {', '.join(sorted(map(str, unknown)))}; use score, passed, reason")
        if "score" not in value and "passed" not in value:
            raise ValueError("returned a dict with neither score nor passed")
        passed = value.get("passed")
        score = _unit(value["score"]) if value.get("score") is not None else float(bool(passed))
        return Score(
            name, score, bool(passed) if passed is not None else score >= PASS_FROM, str(value.get("reason", ""))
        )
    raise TypeError(f"returned {type(value).__name__}; return a bool, a number from 0 to 1, or a dict")


def _unit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"returned the score {value!r}; a score is a number from 0 to 1")
    if not 0 <= float(value) <= 1:
        raise ValueError(f"returned the score {value!r}, outside 0 to 1")
    return float(value)
