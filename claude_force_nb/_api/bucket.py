"""aiolimiter's leaky bucket, taught to follow the Messages API's rate-limit buckets.

aiolimiter is asyncio-native, keeps O(1) state, takes weighted acquisitions
(a call's tokens at once) and wakes waiters first come, first served. The API's
buckets do two things a plain limiter does not, which :class:`Bucket` adds:
their level follows what the API reports, and reserved tokens come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter


class Bucket(AsyncLimiter):
    """A leaky bucket whose size, rate and level follow the API's.

    aiolimiter keeps the level and the rate in ``_level`` and
    ``_rate_per_sec``; these methods are the only place that sets them
    (tests/test_pacing.py checks the behaviour they rely on). ``timer``
    must tell the time as the bucket's event loop does, which aiolimiter
    reads itself: the default is what asyncio's loops tell time by.
    """

    def __init__(
        self, max_rate: float, time_period: float = 60, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(max_rate, time_period)
        self._timer = timer

    def follow(self, limit: int, rate: float) -> None:
        """Take the limit and refill rate (units per second) the API reports."""
        self._leak()
        self.max_rate, self.time_period, self._rate_per_sec = limit, limit / rate, rate
        self._wake_next()

    def hold(self, used: float, *, exactly: bool = False) -> None:
        """At least ``used`` is spent, as the API says (``exactly``: just that much).

        Without ``exactly`` the level never goes down: an answer read late says less than one read early.
        """
        self._leak()
        if used > self._level or exactly:
            self._level = max(0.0, min(float(self.max_rate), used))
            self._wake_next()

    def release(self) -> None:
        """Let every waiter through at once: the limit no longer applies."""
        self._leak()
        # Finite: aiolimiter multiplies the rate by elapsed time, which may be 0.
        self._level, self._rate_per_sec = 0.0, 1e18
        self._wake_next()

    def give_back(self, amount: float) -> None:
        """Return capacity taken for something the API did not spend."""
        if amount > 0:
            self._leak()
            self._level = max(0.0, self._level - amount)
            self._wake_next()

    @property
    def remaining(self) -> float:
        """Capacity left now; reads without leaking, so another thread (a panel) may ask."""
        drained = (self._timer() - self._last_check) * self._rate_per_sec
        return self.max_rate - max(0.0, self._level - drained)
