"""A Messages API server on loopback, for offline use, tests and benchmarks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._faults import Faults
from ._http import MessagesHTTPServer, RequestRecord

DEFAULT_LOG_LIMIT = 10_000


class LocalServer:
    """A threaded HTTP server that answers like the Messages API, with synthetic text.

    ``latency`` (seconds) delays every answer; a request header
    ``x-simulator-latency`` overrides it for that request. ``faults`` injects
    errors into valid ``/v1/messages`` requests; ``log`` records every request
    (the newest ``log_limit`` to ``2 * log_limit`` of them).
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
    ):
        self.host = host
        self.latency = latency
        self.api_key = api_key
        self.timer = timer
        self.faults = Faults(seed)
        self.log: list[RequestRecord] = []
        self.log_limit = log_limit
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        # Bumped by reset(), so a request that outlives its test does not skew the next test's counters.
        self._generation = 0
        self._requested_port = port
        self._lock = threading.Lock()
        # Set to cut short every latency or "slow" sleep in progress; replaced after each use.
        self._wake = threading.Event()
        self._httpd: MessagesHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LocalServer:
        """Bind and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = MessagesHTTPServer((self.host, self._requested_port), self)
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
        self._wake_sleepers()
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
        """Forget the log, counters and pending faults; requests still sleeping answer at once."""
        with self._lock:
            self.log.clear()
            self.in_flight = self.max_in_flight = self.connections = 0
            self._generation += 1
        self.faults.clear()
        self._wake_sleepers()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.log.append(record)
            # Trim in bulk, so a long offline session stays bounded without an O(n) delete per request.
            if len(self.log) > 2 * self.log_limit:
                del self.log[: -self.log_limit]

    def _enter(self) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._generation

    def _leave(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.in_flight -= 1

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)

    def _wake_sleepers(self) -> None:
        wake, self._wake = self._wake, threading.Event()
        wake.set()
