"""The team cache: the cache file's signed rows in a PostgreSQL database that every kernel on every machine shares.

Rows are the file's (:class:`~claude_force_nb._cache.rows.Record`), signed
the same way and checked the same way on every read: a row signed with a
secret this process holds and whose signature fails is tampered with, and
removed; a row signed with another secret is foreign, kept and not served.

The database is a tier behind the local file (:mod:`.tiers`). Reads that miss
the file ask it; writes go to both, the database's through a bounded queue
that one thread drains in batches. When the database is away, at start or in
the middle of a sweep, nothing waits for it: reads skip it until the next
retry (backing off from :data:`RETRY_FIRST` to :data:`RETRY_LAST` seconds),
writes stay queued (the oldest dropped, and counted, past :data:`MAX_QUEUED`),
and one warning says so; when it is back, the queue drains.

The connection string's password is never shown: :attr:`TeamStore.where`
is the URL without it, and messages that could quote it are scrubbed.
"""

from __future__ import annotations

import collections
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from .._errors import CacheError, CacheIntegrityWarning, ClaudeForceWarning
from .integrity import VerifyReport
from .rows import COLUMNS, Record, Row, payload
from .secret import FOREIGN, VALID, Signer
from .stats import StatsCounter
from .store import Endpoint
from .team_flight import CHANNEL, Release, TeamFlights, notice
from .team_schema import FLIGHTS, NewerSchemaError, ensure_schema
from .team_schema import TABLE as _TABLE
from .team_url import POOL_NAME, parse, quiet_pool_logs, where

MAX_QUEUED = 10_000
BATCH = 500
RETRY_FIRST = 0.5
RETRY_LAST = 5.0  # a probe is one connection attempt: cheap enough to keep finding the database back soon
CONNECT_TIMEOUT = 3
TRIM_HEADROOM = 0.9
TCP = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
}
# Connections a kernel keeps: reads, the writer and claims across machines at once.
POOL_SIZE = 10

_SELECT_ONE = f"SELECT {COLUMNS} FROM {_TABLE} WHERE key = %s AND origin = %s ORDER BY created DESC"
_SELECT_ANY = f"SELECT {COLUMNS} FROM {_TABLE} WHERE key = %s ORDER BY synthetic, origin = %s DESC, created DESC"
_UPSERT = (
    f"INSERT INTO {_TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 15)}) ON CONFLICT (key, origin, key_id) DO UPDATE "
    "SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[3:])
)
# Deletes name what they saw, so a row another machine rewrote meanwhile survives.
_DELETE_BAD = f"DELETE FROM {_TABLE} WHERE key = %s AND origin = %s AND key_id = %s AND signature = %s"
_END_FLIGHT = f"DELETE FROM {FLIGHTS} WHERE key = %s AND origin = %s AND holder = %s"
_SIGNATURES = (
    f"SELECT r.key, r.origin, r.key_id, r.signature FROM {_TABLE} r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(key, origin, key_id) "
    "ON r.key = k.key AND r.origin = k.origin AND r.key_id = k.key_id"
)
_TRIM = f"DELETE FROM {_TABLE} WHERE ctid IN (SELECT ctid FROM {_TABLE} ORDER BY expires LIMIT %s)"


class TeamStore:
    """Signed rows in a PostgreSQL table, read on the caller's thread and written by a thread of its own."""

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        counts: StatsCounter | None = None,
        max_rows: int | None = None,
        max_bytes: int | None = None,
    ):
        try:
            from psycopg.conninfo import conninfo_to_dict
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise CacheError("A team cache needs psycopg: pip install 'claude-force-nb[team]'.") from exc
        parts = parse(conninfo_to_dict, url)
        self._password = str(parts.get("password") or "")
        self._url = url
        self.where = where(parts)
        self._signer = signer
        self._clock = clock
        self._timer = timer
        self._counts = counts or StatsCounter()
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        # Opened in the background: a database that is away must not hold up the kernel.
        quiet_pool_logs(parts)
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=POOL_SIZE,
            open=False,
            name=POOL_NAME,
            # A connection whose server vanished without a word fails in seconds, not minutes.
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, **TCP},
            timeout=CONNECT_TIMEOUT,
        )
        self._pool.open(wait=False)
        self._lock = threading.Lock()
        self._queue: collections.deque[Record | Release] = collections.deque()
        self._flights: TeamFlights | None = None
        self._inflight = 0  # items at the queue's head the writer is writing now: never dropped from under it
        self.queued_total = 0
        self.dropped = 0
        self._retry_at = 0.0  # reads skip the database until then, after a failure
        self._backoff = RETRY_FIRST
        self._warned = False  # this outage was said; a probe that finds the database back ends it
        self._ready = False  # schema checked
        self._refused = False  # a newer client's database
        self._closed = False
        self._wake = threading.Condition(self._lock)
        self._writer = threading.Thread(target=self._drain, name="claude-force-nb-team-writer", daemon=True)
        self._writer.start()

    def __repr__(self) -> str:
        return f"<TeamStore {self.where}>"

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, key: str, origin: str, *, replay: bool = False, quiet: bool = False, conn: Any = None) -> Row | None:
        """The newest row for ``key`` from ``origin`` that verifies and has not expired (replay: any of them);
        read on ``conn`` when given (a caller that holds one need not take a second)."""
        sql = _SELECT_ANY if replay else _SELECT_ONE
        found = self._query(sql, (key, origin)) if conn is None else conn.execute(sql, (key, origin)).fetchall()
        now = self._clock()
        for values in found or ():
            record = _record(values)
            verdict = self._signer.verify(payload(record), record.signature, record.key_id)
            if verdict == FOREIGN:
                if not quiet:
                    self._counts.add("foreign", 1)
                continue
            if verdict != VALID:
                self._tampered([record])
                continue
            if replay or record.expires > now:
                return record.row()
        return None

    def count(self) -> int:
        found = self._query(f"SELECT count(*) FROM {_TABLE}", ())
        return int(found[0][0]) if found else 0

    def size(self) -> int:
        found = self._query(f"SELECT pg_total_relation_size('{_TABLE}')", ())
        return int(found[0][0]) if found else 0

    def endpoints(self) -> list[Endpoint]:
        sql = f"SELECT origin, synthetic, count(*) FROM {_TABLE} GROUP BY origin, synthetic ORDER BY count(*) DESC"
        return [Endpoint(origin, bool(synthetic), int(n)) for origin, synthetic, n in self._query(sql, ()) or ()]

    @property
    def available(self) -> bool:
        """Whether the last attempt reached the database."""
        return self._retry_at == 0.0

    @property
    def pending(self) -> int:
        """Writes queued, not yet in the database."""
        with self._lock:
            return len(self._queue)

    # -- writes --------------------------------------------------------------------------------------

    def put(self, row: Row) -> None:
        """Queue ``row``, signed, for the database."""
        record = Record.of(row, self._signer.key_id)
        record = record._replace(signature=self._signer.sign(payload(record)))
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

    @property
    def flights(self) -> TeamFlights:
        """Claims on requests in flight across machines; its listener starts on first use."""
        with self._lock:
            if self._flights is None:
                self._flights = TeamFlights(self, clock=self._clock)
            return self._flights

    @property
    def url(self) -> str:
        """The connection string, password and all: for connections, never for people (see :attr:`where`)."""
        return self._url

    def connection(self) -> Any:
        """A pooled connection (a context manager)."""
        return self._pool.connection(timeout=CONNECT_TIMEOUT)

    def unreachable(self, exc: BaseException) -> None:
        """A caller of :meth:`connection` lost the database: reads skip it until the writer finds it back."""
        self._lost(exc)

    def ensure_ready(self) -> bool:
        """Whether the tables are there and of a version this client knows (made now if need be)."""
        try:
            return self._ensure_ready(wait=True)
        except NewerSchemaError:
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is written, or ``timeout`` seconds; whether it was. Waits for nothing while
        the database is away."""
        deadline = self._timer() + timeout
        with self._lock:
            self._wake.notify()
            while self._queue and not self._retry_at and self._timer() < deadline:
                self._wake.wait(0.05)
            return not self._queue

    def clear(self) -> int:
        """Delete every row, and the rows still queued for the table (the ones being written go too)."""
        with self._lock:
            waiting = range(self._inflight, len(self._queue))
            for i in reversed(waiting):
                if isinstance(self._queue[i], Record):
                    del self._queue[i]
        self.flush()
        return self._rowcount(f"DELETE FROM {_TABLE}", ())

    def prune(self) -> int:
        return self._rowcount(f"DELETE FROM {_TABLE} WHERE expires <= %s", (self._clock(),))

    def verify(self) -> VerifyReport:
        """Check every row: tampered ones go, expired and foreign ones are counted."""
        rows = self._query(f"SELECT {COLUMNS} FROM {_TABLE}", ())
        if rows is None:
            raise CacheError(f"The team cache at {self.where} cannot be reached; nothing was verified.")
        now = self._clock()
        ok, foreign, bad, expired = 0, 0, [], []
        for values in rows:
            record = _record(values)
            verdict = self._signer.verify(payload(record), record.signature, record.key_id)
            if verdict == FOREIGN:
                foreign += 1
            elif verdict != VALID:
                bad.append(record)
            else:
                ok += 1
                if record.expires <= now:
                    expired.append(record.key)
        removed = self._tampered(bad, warn=False)
        return VerifyReport(len(rows), ok, tuple(r.key for r in bad), tuple(expired), removed, foreign)

    # -- moving rows between stores ------------------------------------------------------------------

    def records(self) -> list[Record]:
        """Every row as the table holds it; signatures are the caller's to check."""
        found = self._query(f"SELECT {COLUMNS} FROM {_TABLE} ORDER BY created", ())
        if found is None:
            raise CacheError(f"The team cache at {self.where} cannot be reached; nothing was read from it.")
        return [_record(values) for values in found]

    def take(self, records: list[Record]) -> int:
        """Write ``records`` as signed elsewhere, in one transaction; how many were new or different here."""
        if not self._ensure_ready(wait=True):
            raise CacheError(f"The team cache at {self.where} cannot be reached; nothing was written to it.")
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn, conn.transaction():
                changed = 0
                for start in range(0, len(records), BATCH):
                    batch = records[start : start + BATCH]
                    columns = ([r.key for r in batch], [r.origin for r in batch], [r.key_id for r in batch])
                    held = {
                        (key, origin, key_id): bytes(signature)
                        for key, origin, key_id, signature in conn.execute(_SIGNATURES, columns).fetchall()
                    }
                    fresh = [r for r in batch if held.get((r.key, r.origin, r.key_id)) != r.signature]
                    if fresh:
                        conn.cursor().executemany(_UPSERT, fresh)
                    changed += len(fresh)
                self._bound(conn)
            return changed
        except Exception as exc:
            self._lost(exc)
            raise CacheError(
                f"The team cache at {self.where} failed: {self._scrub(exc)}; nothing was written."
            ) from None

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds, if the database is there) and close.

        What cannot be written now is still in the cache file.
        """
        if self._closed:
            return
        if self.available:
            self.flush(timeout)
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._writer.join(1.0)
        if self._flights is not None:
            self._flights.close()
        self._pool.close(timeout=1.0)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the database --------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple) -> list[tuple] | None:
        """Rows, or None when the database is away: then reads skip it until the writer finds it back."""
        if self._retry_at or not self._ensure_ready():
            return None
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                return list(conn.execute(sql, params).fetchall())
        except PoolTimeout:
            return None  # every connection busy: this read does without, the database is not lost
        except Exception as exc:
            self._lost(exc)
            return None

    def _rowcount(self, sql: str, params: tuple) -> int:
        if not self._ensure_ready(wait=True):
            raise CacheError(f"The team cache at {self.where} cannot be reached; nothing was changed there.")
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                return conn.execute(sql, params).rowcount
        except Exception as exc:
            self._lost(exc)
            raise CacheError(f"The team cache at {self.where} failed: {self._scrub(exc)}") from None

    def _ensure_ready(self, *, wait: bool = False) -> bool:
        """Create the tables (in one transaction) or check their version; False while the database is away.

        Its own connection, not the pool's: a database that refuses is known at once, where the pool
        would wait out its timeout.
        """
        if self._ready:
            return True
        if not wait and self._retry_at:
            return False
        import psycopg

        try:
            with (
                psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn,
                conn.transaction(),
            ):
                ensure_schema(conn, self.where)
        except NewerSchemaError as exc:
            self._refuse(exc)
            if wait:
                raise
            return False
        except Exception as exc:
            self._lost(exc)
            return False
        if self._retry_at:
            # Back after an outage: drop the pool's connections to the server that went away, rather than
            # finding them broken one write at a time; a next outage is said again.
            self._pool.check()
            with self._lock:
                self._warned = False
        self._ready = True
        self._back()
        return True

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
                if not self._ensure_ready(wait=True):
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
                self._lost(exc)  # away: the batch stays queued
                continue
            except psycopg.Error:
                self._write_one_by_one(batch)  # a row the database refuses (a NUL in its text): only it is dropped
            self._back()
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
                conn.cursor().executemany(_UPSERT, records)
                self._bound(conn)
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

    def _bound(self, conn: Any) -> None:
        over = 0
        if self._max_rows is not None:
            (rows,) = conn.execute(f"SELECT count(*) FROM {_TABLE}").fetchone()
            over = max(over, rows - self._max_rows)
        if self._max_bytes is not None:
            # The table's size on disk is an upper bound (a DELETE frees no space until VACUUM); only past it
            # are the rows' own bytes counted, and trimmed to TRIM_HEADROOM of the bound.
            (size,) = conn.execute(f"SELECT pg_total_relation_size('{_TABLE}')").fetchone()
            if size > self._max_bytes:
                rows, live = conn.execute(
                    f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {_TABLE} t"
                ).fetchone()
                if live > self._max_bytes and rows:
                    over = max(over, rows - int(rows * TRIM_HEADROOM * self._max_bytes / live))
        if over > 0:
            trimmed = conn.execute(_TRIM, (over,)).rowcount
            self._counts.add("trimmed", trimmed)

    def _tampered(self, records: Iterable[Record], *, warn: bool = True) -> int:
        records = list(records)
        if not records:
            return 0
        self._counts.add("tampered", len(records))
        if warn:
            warnings.warn(
                f"{len(records)} row(s) of the team cache at {self.where} failed their signature check and were "
                "removed.",
                CacheIntegrityWarning,
                stacklevel=4,
            )
        removed = 0
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                for r in records:
                    removed += conn.execute(_DELETE_BAD, (r.key, r.origin, r.key_id, r.signature)).rowcount
        except Exception as exc:
            self._lost(exc)
        return removed

    def _lost(self, exc: BaseException) -> None:
        """The database did not answer: back off, and say so once for the outage (connections in flight fail
        one after another, some after others have got through again)."""
        with self._lock:
            self._ready = False  # checked again when it is back: it may be another server by then
            self._retry_at = self._timer() + self._backoff
            self._backoff = min(self._backoff * 2, RETRY_LAST)
            warned, self._warned = self._warned, True
        if not warned:
            warnings.warn(
                f"The team cache at {self.where} is unreachable ({self._scrub(exc)}); going on with memory and the "
                "cache file, and its writes wait in a queue until it is back.",
                ClaudeForceWarning,
                stacklevel=2,
            )

    def _back(self) -> None:
        with self._lock:
            self._retry_at = 0.0
            self._backoff = RETRY_FIRST

    def _refuse(self, exc: NewerSchemaError) -> None:
        """A newer client's database: nothing goes to it, and reads skip it, for the rest of the session."""
        with self._lock:
            self.dropped += len(self._queue)
            self._queue.clear()
            self._retry_at = float("inf")
            self._wake.notify_all()
            warned, self._refused = self._refused, True
        if not warned:
            warnings.warn(str(exc), ClaudeForceWarning, stacklevel=2)

    def _scrub(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text.replace(self._password, "***") if self._password else text


def _record(values: tuple) -> Record:
    return Record._make((*values[:14], bytes(values[14])))  # bytea comes back as memoryview
