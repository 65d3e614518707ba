"""What the local server keeps between requests: settings, faults, log, counters, batches, prompt cache, threads."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _checks as checks
from .._config import MAX_SIMULATOR_LATENCY as MAX_LATENCY
from ._answers import Shape
from ._batches import Batches
from ._caching import PromptCache
from ._faults import Faults
from ._limits import Limiter, RateLimits
from ._outcomes import BatchOutcomes
from ._threads import Threads
from ._tools import DEFAULT_TOOL_TURNS

DEFAULT_LOG_LIMIT = 10_000
DEFAULT_BATCH_SECONDS = 2.0
DEFAULT_BATCH_EXPIRY_SECONDS = 24 * 3600.0
# A bound against typos, not a policy: far beyond the API's 24 hours.
MAX_BATCH_SECONDS = 30 * 24 * 3600.0


@dataclass(slots=True)
class RequestRecord:
    """One request the server handled, as seen on the wire."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names; credentials redacted
    body: Any
    request_id: str
    started: float
    stream: bool = False
    status: int | None = None  # None when the connection was dropped
    finished: float | None = None
    fault: str | None = None


class ServerState:
    """Shared by every handler thread; each method takes the lock it needs.

    ``latency`` (seconds) delays every answer; ``faults`` injects errors;
    ``log`` keeps the newest ``log_limit`` to ``2 * log_limit`` requests.
    A message batch takes ``batch_seconds`` to process and expires
    ``batch_expiry_seconds`` after creation, both as set when it is created;
    ``batch_outcomes`` makes chosen batch requests error or expire.
    ``tool_turns`` is how many rounds of tool calls a task gets before the
    final answer, when the request offers tools.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        seed: int = 0,
        log_limit: int = DEFAULT_LOG_LIMIT,
        timer: Callable[[], float] = time.monotonic,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        batch_expiry_seconds: float = DEFAULT_BATCH_EXPIRY_SECONDS,
        tool_turns: int = DEFAULT_TOOL_TURNS,
    ):
        self.latency = latency  # checked by the property below
        self.tool_turns = tool_turns
        self.batch_seconds = batch_seconds
        self.batch_expiry_seconds = batch_expiry_seconds
        self.api_key = api_key
        self.mark_synthetic = True
        self.timer = timer
        self.limiter: Limiter | None = None
        self.faults = Faults(seed)
        self.batches = Batches(timer)
        self.batch_outcomes = BatchOutcomes(seed)
        self.prompt_cache = PromptCache(timer)
        self.threads = Threads(timer)
        self.log: list[RequestRecord] = []
        self.log_limit = log_limit
        self.shapes: deque[Shape] = deque()  # how the next answers end, one per request
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        # Bumped by reset(), so a request that outlives its test does not skew the next test's counters.
        self._generation = 0
        self._lock = threading.Lock()
        # Set to cut short every latency or "slow" sleep in progress; replaced after each use.
        self._wake = threading.Event()
        # The wake event as each handler thread's current request found it when it entered: a
        # request counted in flight before wake_sleepers() must not sleep on the next event.
        self._entered = threading.local()

    @property
    def latency(self) -> float:
        """Seconds every answer waits, from 0 to MAX_LATENCY."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = checks.delay("latency", seconds, high=MAX_LATENCY)

    @property
    def batch_seconds(self) -> float:
        """Seconds a message batch takes from creation to end, 0 for at once."""
        return self._batch_seconds

    @batch_seconds.setter
    def batch_seconds(self, seconds: float) -> None:
        self._batch_seconds = checks.delay("batch_seconds", seconds, high=MAX_BATCH_SECONDS)

    @property
    def batch_expiry_seconds(self) -> float:
        """Seconds after creation at which a batch still processing ends, the rest of its requests expired."""
        return self._batch_expiry_seconds

    @batch_expiry_seconds.setter
    def batch_expiry_seconds(self, seconds: float) -> None:
        self._batch_expiry_seconds = checks.seconds("batch_expiry_seconds", seconds)

    @property
    def tool_turns(self) -> int:
        """Rounds of tool calls per task before the final answer, 0 for none; forced tool_choice always calls."""
        return self._tool_turns

    @tool_turns.setter
    def tool_turns(self, turns: int) -> None:
        if isinstance(turns, bool) or not isinstance(turns, int) or turns < 0:
            raise ValueError(f"tool_turns must be a whole number from 0, not {turns!r}.")
        self._tool_turns = turns

    @property
    def rate_limits(self) -> RateLimits | None:
        """The organisation's limits, or None for none; setting them starts with full buckets."""
        return self.limiter.limits if self.limiter is not None else None

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits | None) -> None:
        self.limiter = Limiter(limits, self.timer, time.time) if limits is not None and limits.any else None

    def record(self, record: RequestRecord) -> None:
        """Add a request to the log."""
        with self._lock:
            self.log.append(record)
            # Trim in bulk, so a long offline session stays bounded without an O(n) delete per request.
            if len(self.log) > 2 * self.log_limit:
                del self.log[: -self.log_limit]

    def shape_next(
        self, *, stop_reason: str | None = None, thinking: str | None = None, invalid_json: bool = False
    ) -> None:
        """Shape the next answer not yet shaped: its stop reason, thinking, JSON that breaks the schema."""
        shape = Shape(stop_reason, thinking, invalid_json)
        with self._lock:
            self.shapes.append(shape)

    def take_shape(self) -> Shape | None:
        with self._lock:
            return self.shapes.popleft() if self.shapes else None

    def enter(self) -> int:
        """A message request starts; returns the token that :meth:`leave` takes."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._entered.wake = self._wake
            return self._generation

    def leave(self, token: int) -> None:
        """The request that :meth:`enter` returned ``token`` for has ended."""
        with self._lock:
            if token == self._generation:
                self.in_flight -= 1
            self._entered.wake = None

    def connected(self) -> None:
        """Count a new client connection."""
        with self._lock:
            self.connections += 1

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, unless :meth:`wake_sleepers` cuts it short."""
        if seconds > 0:
            (getattr(self._entered, "wake", None) or self._wake).wait(seconds)

    def wake_sleepers(self) -> None:
        """Requests sleeping, or counted in flight and about to sleep, answer at once."""
        with self._lock:
            wake, self._wake = self._wake, threading.Event()
        wake.set()

    def reset(self) -> None:
        """Forget the log, counters, pending faults, batches, batch outcomes, cached prompts and threads.

        Requests still sleeping answer at once.
        """
        with self._lock:
            self.log.clear()
            self.shapes.clear()
            self.in_flight = self.max_in_flight = self.connections = 0
            self._generation += 1
        self.faults.clear()
        self.batches.clear()
        self.batch_outcomes.clear()
        self.prompt_cache.clear()
        self.threads.clear()
        self.wake_sleepers()
