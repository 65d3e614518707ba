"""Money: what live answers cost this session, and the budget a sweep may spend."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from . import _checks as checks
from ._errors import BudgetExceededError
from ._pricing import CostOf, Usage
from ._results import AgentResult


@dataclass(frozen=True, slots=True)
class Spend:
    """What the answers that reached the API cost: cache hits cost nothing and are not here.

    ``unpriced`` counts answers whose model has no price, so they add nothing to ``cost``.
    """

    calls: int = 0
    input_tokens: int = 0  # every prompt token, fresh or through the prompt cache
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0


class Ledger:
    """Running totals of live answers; safe to add to from a background sweep's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spend = Spend()

    def add(self, result: AgentResult) -> None:
        """Count a live answer; a refused one that was billed counts too (its cost is set), a hit never."""
        if result.cached or (not result.success and not result.cost):
            return
        with self._lock:
            spend = self._spend
            self._spend = Spend(
                spend.calls + 1,
                spend.input_tokens + result.prompt_tokens,
                spend.output_tokens + result.output_tokens,
                spend.cost + (result.cost or 0.0),
                spend.unpriced + (result.cost is None),
            )

    def snapshot(self) -> Spend:
        return self._spend

    def reset(self) -> None:
        with self._lock:
            self._spend = Spend()


class Budget:
    """A sweep's cap in dollars: new calls are sent only while what the sweep spent is below it.

    Calls already in flight when it is reached finish (their answers are kept), so
    the spend can pass the cap by what they cost.
    """

    def __init__(self, dollars: float) -> None:
        self.limit = checks.dollars("budget", dollars)
        self.ledger = Ledger()

    @classmethod
    def for_models(cls, dollars: float, models: Iterable[str], cost_of: CostOf) -> Budget:
        """A budget for calls to ``models``; ValueError for one without a price, whose spend could not be counted."""
        unpriced = sorted(model for model in set(models) if cost_of(model, Usage(1, 1)) is None)
        if unpriced:
            raise ValueError(
                f"budget: {', '.join(unpriced)} has no price, so its spend cannot be counted (add it with prices=)."
            )
        return cls(dollars)

    @property
    def spent(self) -> float:
        return self.ledger.snapshot().cost

    def check(self) -> None:
        """Raise :class:`BudgetExceededError` once the cap is reached: the call about to be sent is not."""
        if self.spent >= self.limit:
            raise BudgetExceededError(
                f"Not sent: the sweep spent ${self.spent:.4f} of its ${self.limit:.2f} budget; "
                "re-run with a larger --budget (budget=) for the rest."
            )
