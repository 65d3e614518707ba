"""How chosen requests of a message batch end, for tests: errored or expired instead of succeeded.

``assign(custom_id, kind)`` fixes one request's outcome; ``rates`` picks
outcomes by fraction, e.g. ``{"overloaded_error": 0.1, "expired": 0.05}``.
The draw hashes the seed with the custom_id, so a custom_id always gets the
same outcome, whatever its batch or its place in it. Outcomes are settled
when a batch is created; a forced outcome lands when the request would have
finished.
"""

from __future__ import annotations

import hashlib
import threading
from typing import NamedTuple

EXPIRED = "expired"
# Error types a batch result may carry: the SDK's ErrorObject union.
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "Invalid authentication",
    "billing_error": "Billing error",
    "permission_error": "Permission denied",
    "not_found_error": "Not found",
    "rate_limit_error": "Rate limited",
    "timeout_error": "Request timed out",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}
OUTCOME_KINDS = (EXPIRED, *ERROR_MESSAGES)


class Outcome(NamedTuple):
    """A request's settled fate other than success: "expired", or an error type and its message."""

    kind: str
    message: str = ""

    @property
    def errored(self) -> bool:
        return self.kind != EXPIRED


def _checked(kind: str) -> str:
    if kind not in OUTCOME_KINDS:
        raise ValueError(f"Unknown batch outcome {kind!r}; use one of {', '.join(OUTCOME_KINDS)}.")
    return kind


class BatchOutcomes:
    """Outcomes by custom_id first, else by seeded fraction; thread-safe."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._assigned: dict[str, Outcome] = {}
        self._rates: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def rates(self) -> dict[str, float]:
        """Fraction of requests, by custom_id hash, that get each outcome; at most 1 in all."""
        return dict(self._rates)

    @rates.setter
    def rates(self, rates: dict[str, float]) -> None:
        for kind, rate in rates.items():
            _checked(kind)
            if not 0 <= rate <= 1:
                raise ValueError(f"Batch outcome rate for {kind!r} must be between 0 and 1, not {rate!r}.")
        if sum(rates.values()) > 1:
            raise ValueError(f"Batch outcome rates add up to more than 1: {rates!r}.")
        with self._lock:
            self._rates = dict(rates)

    def assign(self, custom_id: str, kind: str, message: str | None = None) -> None:
        """Make the request ``custom_id`` end ``kind`` ("expired" or an error type) in every batch from now."""
        outcome = Outcome(_checked(kind), message if message is not None else ERROR_MESSAGES.get(kind, ""))
        with self._lock:
            self._assigned[custom_id] = outcome

    def draw(self, custom_id: str) -> Outcome | None:
        """The outcome forced on ``custom_id``, or None for success."""
        with self._lock:
            if custom_id in self._assigned:
                return self._assigned[custom_id]
            rates = self._rates
        if not rates:
            return None
        digest = hashlib.sha256(f"{self.seed}:{custom_id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        for kind, rate in rates.items():
            if point < rate:
                return Outcome(kind, ERROR_MESSAGES.get(kind, ""))
            point -= rate
        return None

    def clear(self) -> None:
        """Forget assignments and rates."""
        with self._lock:
            self._assigned.clear()
            self._rates = {}
