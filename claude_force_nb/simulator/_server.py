"""A Messages API server on loopback, for offline use, tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._faults import Faults
from ._http import MessagesHTTPServer
from ._limits import RateLimits
from ._outcomes import BatchOutcomes
from ._state import (
    DEFAULT_BATCH_EXPIRY_SECONDS,
    DEFAULT_BATCH_SECONDS,
    DEFAULT_LOG_LIMIT,
    RequestRecord,
    ServerState,
)
from ._tools import DEFAULT_TOOL_TURNS


class LocalServer:
    """A threaded HTTP server that answers like the Messages API, with synthetic text.

    ``latency`` (seconds) delays every answer; a request header
    ``x-simulator-latency`` overrides it for that request. ``faults`` injects
    errors into valid ``/v1/messages`` requests; ``log`` records every request
    (the newest ``log_limit`` to ``2 * log_limit`` of them); ``rate_limits``
    enforces requests and tokens per minute. Every answer is
    marked synthetic (a response header) unless ``mark_synthetic`` is False,
    which lets a test stand the server in for Claude. Everything the handlers
    share lives in ``state``.

    Message batches take ``batch_seconds`` from creation to end, their
    requests finishing evenly over that time, and expire
    ``batch_expiry_seconds`` after creation; ``batch_outcomes`` makes chosen
    requests error or expire. ``cache_control`` marks are honoured: usage
    reports the tokens the prompt cache wrote and read, with TTLs on ``timer``.

    With tools offered, a task gets ``tool_turns`` rounds of ``tool_use``
    before its final answer; raise it to make a client's tool loop run past
    its own limit. ``shape_next`` shapes the next answer for a test.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        *,
        api_key: str | None = None,
        seed: int = 0,
        log_limit: int = DEFAULT_LOG_LIMIT,
        timer: Callable[[], float] = time.monotonic,
        mark_synthetic: bool = True,
        rate_limits: RateLimits | None = None,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        batch_expiry_seconds: float = DEFAULT_BATCH_EXPIRY_SECONDS,
        tool_turns: int = DEFAULT_TOOL_TURNS,
    ):
        self.host = host
        self.state = ServerState(
            latency=latency,
            api_key=api_key,
            seed=seed,
            log_limit=log_limit,
            timer=timer,
            batch_seconds=batch_seconds,
            batch_expiry_seconds=batch_expiry_seconds,
            tool_turns=tool_turns,
        )
        self.state.mark_synthetic = mark_synthetic
        self.state.rate_limits = rate_limits
        self._requested_port = port
        self._httpd: MessagesHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalServer:
        """Bind and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = MessagesHTTPServer((self.host, self._requested_port), self.state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"simulator:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.state.wake_sleepers()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("The server is not running; call start() first.")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The server root, as the SDK's ``base_url`` expects it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def reset(self) -> None:
        """Forget the log, counters, pending faults and shapes, batches, batch outcomes and cached prompts.

        Requests still sleeping answer at once.
        """
        self.state.reset()

    def wake(self) -> None:
        """Requests sleeping out their latency answer at once (a test holds them with a long latency)."""
        self.state.wake_sleepers()

    def shape_next(
        self, *, stop_reason: str | None = None, thinking: str | None = None, invalid_json: bool = False
    ) -> None:
        """Make the next answer end with ``stop_reason`` and carry thinking ("plain" or "redacted").

        ``invalid_json`` makes a structured answer (or a tool call's input) break its schema: a
        required property left out, or else the value wrapped in a list, so a client's validation
        failure can be tested.
        """
        self.state.shape_next(stop_reason=stop_reason, thinking=thinking, invalid_json=invalid_json)

    # The state's settings and counters, read and set on the server for convenience.

    @property
    def rate_limits(self) -> RateLimits | None:
        """Requests and tokens per (scaled) minute, enforced as the API does; None for no limits."""
        return self.state.rate_limits

    @rate_limits.setter
    def rate_limits(self, limits: RateLimits | None) -> None:
        self.state.rate_limits = limits

    @property
    def latency(self) -> float:
        return self.state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.state.latency = seconds

    @property
    def tool_turns(self) -> int:
        """Rounds of tool calls a task gets before the final answer (default 1; 0: answer at once)."""
        return self.state.tool_turns

    @tool_turns.setter
    def tool_turns(self, turns: int) -> None:
        self.state.tool_turns = turns

    @property
    def batch_seconds(self) -> float:
        """Seconds a message batch takes from creation to end (0: at once), as set when it is created."""
        return self.state.batch_seconds

    @batch_seconds.setter
    def batch_seconds(self, seconds: float) -> None:
        self.state.batch_seconds = seconds

    @property
    def batch_expiry_seconds(self) -> float:
        """Seconds after creation at which a batch still processing ends with the rest of its requests expired."""
        return self.state.batch_expiry_seconds

    @batch_expiry_seconds.setter
    def batch_expiry_seconds(self, seconds: float) -> None:
        self.state.batch_expiry_seconds = seconds

    @property
    def batch_outcomes(self) -> BatchOutcomes:
        """Which batch requests error or expire instead of succeeding: by custom_id, or by seeded rates."""
        return self.state.batch_outcomes

    @property
    def api_key(self) -> str | None:
        return self.state.api_key

    @api_key.setter
    def api_key(self, key: str | None) -> None:
        self.state.api_key = key

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def log(self) -> list[RequestRecord]:
        return self.state.log

    @property
    def timer(self) -> Callable[[], float]:
        return self.state.timer

    @property
    def in_flight(self) -> int:
        return self.state.in_flight

    @property
    def max_in_flight(self) -> int:
        return self.state.max_in_flight

    @property
    def connections(self) -> int:
        return self.state.connections

    @property
    def open_connections(self) -> int:
        """Client connections open now: a client that closed its pool has hung them all up."""
        return self._httpd.open_connections if self._httpd is not None else 0
