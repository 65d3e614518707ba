"""Rate limits as the Messages API enforces them: token buckets per minute, reported in headers.

Each limit is a bucket holding up to ``limit`` units that refills continuously
at ``limit`` per minute. A request takes one request, its input tokens and,
until it finishes, ``max_tokens`` of output (the estimate the API uses; the
unused part is given back at the end). A request the buckets cannot cover is
answered 429 with how long until they can. ``minute`` scales time, so a test
can run a "minute" in a few seconds; every figure sent (``remaining``,
``reset``, ``retry-after``) follows the scaled clock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import _checks as checks

HEADER_PREFIX = "anthropic-ratelimit-"
# What each bucket is called in the headers.
KINDS = ("requests", "input-tokens", "output-tokens")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute limits (None: unlimited) and how many seconds a minute lasts."""

    requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    minute: float = 60.0

    def __post_init__(self) -> None:
        for name in ("requests", "input_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, checks.count(name, value))
        object.__setattr__(self, "minute", checks.seconds("minute", self.minute))

    @property
    def any(self) -> bool:
        return any(limit is not None for limit in (self.requests, self.input_tokens, self.output_tokens))


class Bucket:
    """Up to ``limit`` units, refilled at ``limit`` per ``minute`` seconds."""

    __slots__ = ("level", "limit", "rate", "stamp")

    def __init__(self, limit: int, minute: float, now: float):
        self.limit = limit
        self.rate = limit / minute
        self.level = float(limit)
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.limit, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` is available (after :meth:`refill`); more than any wait if it never fits."""
        missing = min(amount, self.limit) - self.level
        return max(0.0, missing / self.rate)

    def until_full(self) -> float:
        return (self.limit - self.level) / self.rate


@dataclass(frozen=True, slots=True)
class Admission:
    """A limiter's answer: ``wait`` 0 means admitted; else the limit that ran out."""

    wait: float
    kind: str | None
    limit: int
    headers: dict[str, str]

    def message(self) -> str:
        """The API's wording for a 429."""
        unit = (self.kind or "requests").replace("-", " ")
        return f"This request would exceed your organization's rate limit of {self.limit:,} {unit} per minute."


class Limiter:
    """The buckets of one organisation; thread-safe."""

    def __init__(self, limits: RateLimits, timer: Callable[[], float], clock: Callable[[], float]):
        self.limits = limits
        self._timer = timer
        self._clock = clock
        now = timer()
        sizes = dict(zip(KINDS, (limits.requests, limits.input_tokens, limits.output_tokens), strict=True))
        self._buckets = {kind: Bucket(size, limits.minute, now) for kind, size in sizes.items() if size is not None}
        self._lock = threading.Lock()

    def admit(self, input_tokens: int, max_tokens: int) -> Admission:
        """Take what a request needs, or nothing and say how long until it can."""
        wants = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
        with self._lock:
            now = self._timer()
            for bucket in self._buckets.values():
                bucket.refill(now)
            waits = {kind: bucket.wait(wants[kind]) for kind, bucket in self._buckets.items()}
            kind = max(waits, key=waits.__getitem__, default=None)
            if kind is None or waits[kind] == 0:
                # A request larger than a whole bucket goes through once the bucket is full, leaving
                # it in debt: it can never fit, and refusing it forever would only hang the caller.
                for name, bucket in self._buckets.items():
                    bucket.level -= wants[name]
                return Admission(0.0, None, 0, self._headers())
            return Admission(waits[kind], kind, self._buckets[kind].limit, self._headers())

    def settle(self, reserved: int, used: int) -> dict[str, str]:
        """Give back the output tokens a finished request reserved but did not use; the headers to send."""
        with self._lock:
            bucket = self._buckets.get("output-tokens")
            if bucket is not None:
                bucket.refill(self._timer())
                bucket.level = min(bucket.limit, bucket.level + max(0, reserved - used))
            return self._headers()

    def headers(self) -> dict[str, str]:
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill(self._timer())
            return self._headers()

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        wall = self._clock()
        for kind, bucket in self._buckets.items():
            headers.update(_fields(kind, bucket, wall))
        tokens = [self._buckets[kind] for kind in ("input-tokens", "output-tokens") if kind in self._buckets]
        if tokens:
            # The API's "tokens" headers describe whichever token limit is closest to running out.
            tightest = min(tokens, key=lambda bucket: bucket.level / bucket.limit)
            headers.update(_fields("tokens", tightest, wall))
        return headers


def _fields(kind: str, bucket: Bucket, wall: float) -> dict[str, str]:
    return {
        f"{HEADER_PREFIX}{kind}-limit": str(bucket.limit),
        f"{HEADER_PREFIX}{kind}-remaining": str(max(0, math.floor(bucket.level))),
        f"{HEADER_PREFIX}{kind}-reset": rfc3339(wall + bucket.until_full()),
    }


def rfc3339(timestamp: float) -> str:
    """UTC with milliseconds: a scaled minute needs finer resets than the API's whole seconds."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retry_headers(wait: float) -> dict[str, str]:
    """``retry-after`` in whole seconds as the API sends it, and in milliseconds, which the SDK prefers."""
    return {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
