"""The team cache: the cache file's signed rows in a PostgreSQL database that every kernel on every machine shares.

Rows are the file's (:class:`~claude_force_nb._cache.rows.Record`), signed
the same way and checked the same way on every read: a row signed with a
secret this process holds and whose signature fails is tampered with, and
removed; a row signed with another secret is foreign, kept and not served.

The database is a tier behind the local file (:mod:`.tiers`). Reads that miss
the file ask it; writes go to both, the database's through a bounded queue
that one thread drains in batches (:mod:`.team_writer`). When the database is
away, at start or in the middle of a sweep, nothing waits for it: reads skip
it until the writer finds it back, writes stay queued, and one warning says
so; when it is back, the queue drains.

The connection string's password is never shown: :attr:`TeamStore.where`
is the URL without it, and messages that could quote it are scrubbed.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from .._errors import CacheError, CacheIntegrityWarning
from .integrity import VerifyReport
from .rows import COLUMNS, Record, Row, payload
from .secret import FOREIGN, VALID, Signer
from .stats import StatsCounter
from .store import Endpoint
from .team_flight import Release, TeamFlights
from .team_schema import TABLE as _TABLE
from .team_schema import NewerSchemaError, ensure_schema
from .team_url import POOL_NAME, parse, quiet_pool_logs, where
from .team_writer import BATCH, CONNECT_TIMEOUT, UPSERT, TeamWriter

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
# Deletes name what they saw, so a row another machine rewrote meanwhile survives.
_DELETE_BAD = f"DELETE FROM {_TABLE} WHERE key = %s AND origin = %s AND key_id = %s AND signature = %s"
_SIGNATURES = (
    f"SELECT r.key, r.origin, r.key_id, r.signature FROM {_TABLE} r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(key, origin, key_id) "
    "ON r.key = k.key AND r.origin = k.origin AND r.key_id = k.key_id"
)


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
        self._flights: TeamFlights | None = None
        self._flights_lock = threading.Lock()
        self._ready = False  # schema checked (since the database was last lost)
        self._closed = False
        self._writer = TeamWriter(
            self._pool,
            where=self.where,
            ready=lambda: self._ensure_ready(wait=True),
            scrub=self._scrub,
            counts=self._counts,
            timer=timer,
            max_rows=max_rows,
            max_bytes=max_bytes,
        )

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
        return self._writer.available

    @property
    def pending(self) -> int:
        """Writes queued, not yet in the database."""
        return self._writer.pending

    @property
    def dropped(self) -> int:
        """Writes given up: past the queue's bound, refused, or for a newer client's database."""
        return self._writer.dropped

    @property
    def queued_total(self) -> int:
        return self._writer.queued_total

    # -- writes --------------------------------------------------------------------------------------

    def put(self, row: Row) -> None:
        """Queue ``row``, signed, for the database."""
        record = Record.of(row, self._signer.key_id)
        self._writer.put(record._replace(signature=self._signer.sign(payload(record))))

    def enqueue(self, release: Release) -> None:
        """Queue the end of a claim behind the rows queued before it (never dropped)."""
        self._writer.enqueue(release)

    @property
    def flights(self) -> TeamFlights:
        """Claims on requests in flight across machines; its listener starts on first use."""
        with self._flights_lock:
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
        return self._writer.flush(timeout)

    def clear(self) -> int:
        """Delete every row, and the rows still queued for the table (the ones being written go too)."""
        self._writer.forget_rows()
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
                        conn.cursor().executemany(UPSERT, fresh)
                    changed += len(fresh)
                self._writer.bound(conn)
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
        self._closed = True
        self._writer.close(timeout)
        if self._flights is not None:
            self._flights.close()
        self._pool.close(timeout=1.0)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the database --------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple) -> list[tuple] | None:
        """Rows, or None when the database is away: then reads skip it until the writer finds it back."""
        if not self.available or not self._ensure_ready():
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
        if self._ready and self._writer.available:
            return True
        if not wait and not self._writer.available:
            return False
        import psycopg

        try:
            with (
                psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn,
                conn.transaction(),
            ):
                ensure_schema(conn, self.where)
        except NewerSchemaError as exc:
            self._writer.refuse(exc)
            if wait:
                raise
            return False
        except Exception as exc:
            self._lost(exc)
            return False
        if self._writer.back():
            # Back after an outage: drop the pool's connections to the server that went away, rather than
            # finding them broken one write at a time.
            self._pool.check()
        self._ready = True
        return True

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
        self._writer.lost(exc)  # the schema is checked again once it is back: it may be another server by then

    def _scrub(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text.replace(self._password, "***") if self._password else text


def _record(values: tuple) -> Record:
    return Record._make((*values[:14], bytes(values[14])))  # bytea comes back as memoryview
