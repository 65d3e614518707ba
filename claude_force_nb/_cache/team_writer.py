"""Writes to the team database: a bounded queue one thread drains in batches, and the outages it rides out.

Rows and the ends of claims queue in order, so an answer is in the table
before the claim on it ends. While the database is away nothing waits for
it: :attr:`TeamWriter.available` is False until the thread's next probe
finds it back (backing off from :data:`RETRY_FIRST` to :data:`RETRY_LAST`
seconds), rows stay queued (the oldest dropped, and counted, past
:data:`MAX_QUEUED`), and one warning says so for the outage. A row the
database refuses (a NUL in its text) is dropped alone; it is no outage.
"""

from __future__ import annotations

import collections
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from .._errors import ClaudeForceWarning
from .rows import COLUMNS, Record
from .stats import StatsCounter
from .team_flight import CHANNEL, Release, notice
from .team_schema import FLIGHTS, TABLE, NewerSchemaError

MAX_QUEUED = 10_000
BATCH = 500
RETRY_FIRST = 0.5
RETRY_LAST = 5.0  # a probe is one connection attempt: cheap enough to keep finding the database back soon
CONNECT_TIMEOUT = 3
TRIM_HEADROOM = 0.9

UPSERT = (
    f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)}) ON CONFLICT (key, origin, key_id) DO UPDATE "
    "SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[3:])
)
_END_FLIGHT = f"DELETE FROM {FLIGHTS} WHERE key = %s AND origin = %s AND holder = %s"
_TRIM = f"DELETE FROM {TABLE} WHERE ctid IN (SELECT ctid FROM {TABLE} ORDER BY expires LIMIT %s)"


class TeamWriter:
    """The team store's writes, and whether its database is there.

    ``ready`` checks (or makes) the schema, raising :class:`NewerSchemaError`
    for a newer one; ``scrub`` takes the password out of a message.
    """

    def __init__(
        self,
        pool: Any,
        *,
        where: str,
        ready: Callable[[], bool],
        scrub: Callable[[BaseException], str],
        counts: StatsCounter,
        timer: Callable[[], float] = time.monotonic,
        max_rows: int | None = None,
        max_bytes: int | None = None,
    ):
        self._pool = pool
        self._where = where
        self._ready = ready
        self._scrub = scrub
        self._counts = counts
        self._timer = timer
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: collections.deque[Record | Release] = collections.deque()
        self._inflight = 0  # items at the queue's head being written now: never dropped from under the thread
        self.queued_total = 0
        self.dropped = 0
        self._retry_at = 0.0  # reads skip the database until then, after a failure
        self._backoff = RETRY_FIRST
        self._warned = False  # this outage was said; a probe that finds the database back ends it
        self._refused = False  # a newer client's database
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="claude-force-nb-team-writer", daemon=True)
        self._thread.start()

    # -- the queue -----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Writes queued, not yet in the database."""
        with self._lock:
            return len(self._queue)

    def put(self, record: Record) -> None:
        """Queue a signed row; past the bound, the oldest row waiting is dropped (and counted)."""
        with self._lock:
            if self._closed or self._refused:
                return
            if len(self._queue) >= MAX_QUEUED:
                waiting = range(self._inflight, len(self._queue))
                oldest = next((i for i in waiting if isinstance(self._queue[i], Record)), None)
                if oldest is not None:
                    del self._queue[oldest]
                    self.dropped += 1
                    self._counts.add("dropped", 1)
            self._queue.append(record)
            self.queued_total += 1
            self._wake.notify()

    def enqueue(self, release: Release) -> None:
        """Queue the end of a claim behind the rows queued before it (never dropped)."""
        with self._lock:
            if self._closed:
                return
            self._queue.append(release)
            self._wake.notify()

    def forget_rows(self) -> None:
        """Drop the rows waiting (not those being written, nor the ends of claims): the table is being cleared."""
        with self._lock:
            for i in reversed(range(self._inflight, len(self._queue))):
                if isinstance(self._queue[i], Record):
                    del self._queue[i]

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is written, or ``timeout`` seconds; whether it was. Waits for nothing while
        the database is away."""
        deadline = self._timer() + timeout
        with self._lock:
            self._wake.notify()
            while self._queue and not self._retry_at and self._timer() < deadline:
                self._wake.wait(0.05)
            return not self._queue

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds, if the database is there), then stop."""
        if self.available:
            self.flush(timeout)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(1.0)

    # -- outages -------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Whether the last attempt reached the database."""
        return self._retry_at == 0.0

    def lost(self, exc: BaseException) -> None:
        """The database did not answer: back off, and say so once for the outage (connections in flight fail
        one after another, some after others have got through again)."""
        with self._lock:
            self._retry_at = self._timer() + self._backoff
            self._backoff = min(self._backoff * 2, RETRY_LAST)
            warned, self._warned = self._warned, True
            self._wake.notify()  # to probe for it, even with nothing queued
        if not warned:
            warnings.warn(
                f"The team cache at {self._where} is unreachable ({self._scrub(exc)}); going on with memory and "
                "the cache file, and its writes wait in a queue until it is back.",
                ClaudeForceWarning,
                stacklevel=3,
            )

    def back(self) -> bool:
        """The database answered; whether it had been away (a next outage is said again)."""
        with self._lock:
            was_away = self._retry_at != 0.0
            self._retry_at = 0.0
            self._backoff = RETRY_FIRST
            if was_away:
                self._warned = False
            return was_away

    def refuse(self, exc: NewerSchemaError) -> None:
        """A newer client's database: nothing goes to it, and reads skip it, for the rest of the session."""
        with self._lock:
            self.dropped += len(self._queue)
            self._queue.clear()
            self._retry_at = float("inf")
            self._wake.notify_all()
            warned, self._refused = self._refused, True
        if not warned:
            warnings.warn(str(exc), ClaudeForceWarning, stacklevel=3)

    # -- the thread ----------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Write queued rows in batches; while the database is away, look for it again at each retry."""
        import psycopg
        from psycopg_pool import PoolTimeout

        while True:
            with self._lock:
                while (self._refused or not (self._queue or self._retry_at)) and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                wait = self._retry_at - self._timer() if self._retry_at else 0.0
            if wait > 0:
                with self._lock:
                    self._wake.wait(min(wait, 0.5))
                continue
            try:
                if not self._ready():
                    continue
            except NewerSchemaError:
                continue  # refused, and said so; nothing more is written
            with self._lock:
                batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
                self._inflight = len(batch)
            if not batch:
                continue
            try:
                self._write(batch)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                self.lost(exc)  # away: the batch stays queued
                continue
            except psycopg.Error:
                self._write_one_by_one(batch)  # a row the database refuses (a NUL in its text): only it is dropped
            self.back()
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self._inflight = 0
                self._wake.notify_all()

    def _write(self, batch: list[Record | Release]) -> None:
        """Rows, then the ends of claims behind them, and their notifications, in one transaction."""
        records = [item for item in batch if isinstance(item, Record)]
        with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn, conn.transaction():
            if records:
                conn.cursor().executemany(UPSERT, records)
                self.bound(conn)
            for item in batch:
                if isinstance(item, Release):
                    conn.execute(_END_FLIGHT, (item.key, item.origin, item.holder))
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notice(item)))

    def _write_one_by_one(self, batch: list[Record | Release]) -> None:
        import psycopg

        for item in batch:
            try:
                self._write([item])
            except psycopg.Error:
                if isinstance(item, Record):
                    with self._lock:
                        self.dropped += 1
                    self._counts.add("dropped", 1)

    def bound(self, conn: Any) -> None:
        """Trim the oldest rows past the row and byte bounds, inside the caller's transaction on ``conn``."""
        over = 0
        if self._max_rows is not None:
            (rows,) = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            over = max(over, rows - self._max_rows)
        if self._max_bytes is not None:
            # The table's size on disk is an upper bound (a DELETE frees no space until VACUUM); only past it
            # are the rows' own bytes counted, and trimmed to TRIM_HEADROOM of the bound.
            (size,) = conn.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()
            if size > self._max_bytes:
                rows, live = conn.execute(
                    f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {TABLE} t"
                ).fetchone()
                if live > self._max_bytes and rows:
                    over = max(over, rows - int(rows * TRIM_HEADROOM * self._max_bytes / live))
        if over > 0:
            trimmed = conn.execute(_TRIM, (over,)).rowcount
            self._counts.add("trimmed", trimmed)
