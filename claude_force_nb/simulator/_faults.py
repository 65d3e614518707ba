"""Faults the local server can inject: a FIFO queue plus seeded random rates."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "529", "500", "slow", "drop", "stream_error")

# Status, error type and message for faults that answer with an error body.
ERRORS = {
    "429": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    "529": (529, "overloaded_error", "Overloaded"),
    "500": (500, "api_error", "Internal server error"),
}

DEFAULT_RETRY_AFTER_MS = 10
DEFAULT_SLOW_SECONDS = 3.0
DEFAULT_EVENTS_BEFORE_ERROR = 2

_OPTIONS = {
    "429": {"retry_after_ms", "should_retry", "message"},
    "529": {"retry_after_ms", "should_retry", "message"},
    "500": {"retry_after_ms", "should_retry", "message"},
    "slow": {"seconds"},
    "drop": set(),
    "stream_error": {"after", "retry_after_ms", "should_retry", "message"},
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure and its options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}.")
        unknown = set(self.options) - _OPTIONS[self.kind]
        if unknown:
            allowed = ", ".join(sorted(_OPTIONS[self.kind])) or "none"
            raise ValueError(f"Fault {self.kind!r} takes no option {', '.join(sorted(unknown))}; allowed: {allowed}.")

    def error_headers(self) -> dict[str, str]:
        """Headers that steer the SDK's retry logic."""
        headers = {}
        # The API sends retry-after with rate limits; other errors get it only when asked.
        ms = self.options.get("retry_after_ms", DEFAULT_RETRY_AFTER_MS if self.kind == "429" else None)
        if ms is not None:
            headers["retry-after-ms"] = str(ms)
            # Whole seconds, rounded up, for clients that ignore the millisecond header.
            headers["retry-after"] = str(max(1, math.ceil(ms / 1000)))
        if "should_retry" in self.options:
            headers["x-should-retry"] = "true" if self.options["should_retry"] else "false"
        return headers


class Faults:
    """Queued faults are used first, one per request; otherwise ``rates`` may pick one."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rates: dict[str, float] = {}
        self._queue: deque[Fault] = deque()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def rates(self) -> dict[str, float]:
        """Probability per request of each fault kind, e.g. ``{"429": 0.1}``."""
        return self._rates

    @rates.setter
    def rates(self, rates: dict[str, float]) -> None:
        for kind, rate in rates.items():
            Fault(kind)
            if not 0 <= rate <= 1:
                raise ValueError(f"Fault rate for {kind!r} must be between 0 and 1, not {rate!r}.")
        self._rates = dict(rates)

    def push(self, kind: str, **options: Any) -> None:
        """Queue a fault for the next request that has not got one yet."""
        fault = Fault(kind, options)
        with self._lock:
            self._queue.append(fault)

    def take(self) -> Fault | None:
        """The fault for the request being handled, or None."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            for kind, rate in self._rates.items():
                if rate > 0 and self._random.random() < rate:
                    return Fault(kind)
        return None

    def __len__(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        """Empty the queue, zero the rates and rewind the random source."""
        with self._lock:
            self._queue.clear()
            self._rates = {}
            self._random.seed(self.seed)
