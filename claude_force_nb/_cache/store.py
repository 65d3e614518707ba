"""The cache file: signed answers in SQLite, shared by every kernel on the machine.

The idea follows nbformat's NotebookNotary (HMAC signatures kept in SQLite).
What a row's signature binds, and what becomes of a row or a file that fails
its check, is :mod:`~claude_force_nb._cache.integrity`'s concern; this module
stores, reads, bounds and clears.

Reads happen on the caller's thread through one connection behind a lock;
writes are queued to a :class:`~claude_force_nb._cache.writer.Writer` thread.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

from .._config import user_path
from .._errors import CacheError, CacheIntegrityWarning
from .database import DEFAULT_BUSY_TIMEOUT, connect, damaged, open_database
from .integrity import DELETE_EXPIRED, Integrity, VerifyReport, weakly
from .rows import COLUMNS, Record, Row, payload
from .secret import FOREIGN, VALID, Signer
from .stats import StatsCounter
from .writer import Statement, Writer

T = TypeVar("T")

# A write that keeps failing is said at most this often (seconds); every one is counted.
DROP_WARNING_INTERVAL = 60.0
# Bounds for a laptop: far more answers than a session makes, far less disk than a laptop has.
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_BYTES = 1 << 30
# Trimming goes this far below a bound, so that it does not run again at the next commit.
_TRIM_HEADROOM = 0.9

# Rows of the same request and endpoint signed by different secrets (two kernels') live side by side.
_SELECT_ONE = f"SELECT rowid, {COLUMNS} FROM responses WHERE key = ? AND origin = ? ORDER BY created DESC"
# Replay serves what was recorded wherever it came from: Claude's answers before synthetic ones,
# the caller's own endpoint first, the newest first.
_SELECT_ANY = f"SELECT rowid, {COLUMNS} FROM responses WHERE key = ? ORDER BY synthetic, origin = ? DESC, created DESC"
_INSERT = f"INSERT OR REPLACE INTO responses ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
_PRUNE = "DELETE FROM responses WHERE expires <= ?"
_SELECT_RECORDS = f"SELECT {COLUMNS} FROM responses ORDER BY rowid"
_SIGNATURE = "SELECT signature FROM responses WHERE key = ? AND origin = ? AND key_id = ?"
_ORIGINS = "SELECT origin, synthetic, count(*) FROM responses GROUP BY origin, synthetic ORDER BY count(*) DESC"
# Oldest expiry first: the answers that would have left soonest anyway.
_TRIM = "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM responses ORDER BY expires LIMIT ?)"


class Found(NamedTuple):
    """A record read from the file, with the rowid that deleting it exactly needs."""

    rowid: int
    record: Record


class Endpoint(NamedTuple):
    """How many answers the file holds from one endpoint."""

    origin: str
    synthetic: bool
    rows: int


class Store:
    """Signed rows in one SQLite file (WAL), with writes on a background thread."""

    def __init__(
        self,
        path: str | os.PathLike,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        counts: StatsCounter | None = None,
        on_rebuilt: Callable[[Store], None] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self.path = user_path(path)
        self.signer = signer
        self._clock = clock
        self.counts = counts if counts is not None else StatsCounter()
        self._on_rebuilt = on_rebuilt or (lambda store: None)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pruned = False
        self._warned_read = False
        self._dropped_since_warning, self._next_drop_warning = 0, -math.inf
        self._trimmed_in_commit = 0  # by the commit in progress, on the writer's thread
        # Rows queued but not yet committed, by (key, origin): read as if they were in the file, so an
        # answer the memory tier has already evicted (a burst larger than it) is not asked for again.
        self._pending: dict[tuple[str, str], tuple[Record, Row]] = {}
        # A holder, so that the finalizer closes whichever reader is current after a rebuild.
        damaged: list[Path] = []
        self._connections = _Connections(
            open_database(self.path, busy_timeout=busy_timeout, clock=clock, damaged_aside=damaged.append)
        )
        # The writer (and its thread) must not refer back to self, or a store
        # nobody closes would never be collected and its finalizer never run.
        self._writer = Writer(
            partial(connect, self.path, busy_timeout),
            on_error=weakly(self._write_failed),
            on_settled=weakly(self._settled),
            before_commit=weakly(self._bound),
        )
        self._integrity = Integrity(
            self.path,
            signer,
            self._writer,
            self._connections,
            self._lock,
            clock=clock,
            busy_timeout=busy_timeout,
            counts=self.counts,
            rebuilt=weakly(self._rebuilt),
            bound=weakly(self._bound_now),
        )
        # Commits what is queued when the store is collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _shutdown, self._writer, self._connections, self._lock)
        for aside in damaged:
            self._integrity.salvage_from(aside)

    # -- reading -------------------------------------------------------------------------------------

    def get(self, key: str, origin: str, *, replay: bool = False, quiet: bool = False) -> Row | None:
        """The row for ``key`` from ``origin`` if it is there, signed here and not expired.

        ``replay`` serves what was recorded however old it is, from any
        endpoint (``origin``'s first), and leaves the file as it was.
        ``quiet`` only asks: nothing is counted, said or removed.
        """
        if self._writer.closed:
            return None
        # A second look only after this read met damage: the file was rebuilt with what could be saved.
        for first_look in (True, False):
            if self._integrity.salvaging is not None:
                self._integrity.wait_for_salvage()
            queued = self._pending.get((key, origin)) if self._pending else None
            if queued is not None and (replay or queued[1].expires > self._clock()):
                return queued[1]
            sql = _SELECT_ANY if replay else _SELECT_ONE
            try:
                with self._lock:
                    rows = self._connections.reader.execute(sql, (key, origin)).fetchall()
                found = [Found(row[0], Record._make(row[1:])) for row in rows]
                break
            except sqlite3.ProgrammingError:
                return None  # closed (at exit, say) while this read waited for the lock
            except sqlite3.Error as exc:
                if quiet:
                    return None
                self._read_failed(exc)
                if not first_look:
                    return None
        for rowid, record in found:
            verdict = self._integrity.verdict(record)
            if verdict != VALID:
                if quiet:
                    continue
                if verdict == FOREIGN:
                    self._integrity.foreign()
                else:
                    self._integrity.rejected(rowid, record, remove=not replay)
                continue
            now = self._clock()
            if record.expires <= now and not replay:
                if not quiet:
                    self._execute(DELETE_EXPIRED, (key, record.origin, record.key_id, now))
                continue
            try:
                return record.row()
            except ValueError:  # signed, yet not JSON: written by another version; treat as absent
                continue
        return None

    def count(self) -> int:
        return self._query("SELECT count(*) FROM responses", [(0,)])[0][0]

    def endpoints(self) -> list[Endpoint]:
        """How many answers the file holds from each endpoint, most first."""
        return [Endpoint(origin, bool(synthetic), count) for origin, synthetic, count in self._query(_ORIGINS, [])]

    def _query(self, sql: str, otherwise: list) -> list:
        try:
            with self._lock:
                return self._connections.reader.execute(sql).fetchall()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return otherwise

    def size(self) -> int:
        """Bytes on disk, including the write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except OSError:
                pass
        return total

    # -- writing -------------------------------------------------------------------------------------

    def put(self, row: Row) -> None:
        """Sign ``row`` now and queue it; it reaches the file with the next batch."""
        if self._writer.closed:
            return
        record = Record.of(row, self.signer.key_id)
        record = record._replace(signature=self.signer.sign(payload(record)))
        with self._lock:
            self._pending[(record.key, record.origin)] = (record, row)
        if not self._pruned:
            # Once per session, on the first write, so read-only sessions never write.
            self._pruned = True
            self._execute(_PRUNE, (self._clock(),))
        self._execute(_INSERT, record)

    def _settled(self, statements: list[Statement]) -> None:
        """Queued rows are in the file now (or given up on): reads go to the file again."""
        trimmed, self._trimmed_in_commit = self._trimmed_in_commit, 0
        if trimmed:
            self.counts.add("trimmed", trimmed)
        with self._lock:
            for sql, params in statements:
                if sql is _INSERT:
                    slot = (params[0], params[1])  # key, origin
                    queued = self._pending.get(slot)
                    if queued is not None and queued[0] is params:
                        del self._pending[slot]

    def flush(self) -> None:
        """Wait until queued writes are committed."""
        self._writer.flush()

    def clear(self) -> int:
        """Delete every row and give the space back to the disk; return how many rows there were."""
        removed = self._call(lambda conn: conn.execute("DELETE FROM responses").rowcount)
        self._check_open()
        self._writer.call(_compact, transaction=False)
        return removed

    def prune(self) -> int:
        """Delete expired rows; return how many."""
        now = self._clock()
        return self._call(lambda conn: conn.execute(_PRUNE, (now,)).rowcount)

    def verify(self) -> VerifyReport:
        """Check every row: remove tampered and expired ones; keep foreign ones (another secret's)."""
        self._check_open()
        self.flush()
        return self._integrity.verify(self._call)

    @property
    def foreign_seen(self) -> bool:
        """Whether a row signed with a secret this process does not hold was met."""
        return self._integrity.foreign_seen

    def foreign_hint(self) -> str:
        """What to do about rows signed with a secret this process does not hold."""
        return self._integrity.foreign_hint()

    # -- moving rows between stores ------------------------------------------------------------------

    def records(self) -> list[Record]:
        """Every row as the file holds it, after what is queued; signatures are the caller's to check."""
        return self._call(lambda conn: [Record._make(values) for values in conn.execute(_SELECT_RECORDS)])

    def take(self, records: list[Record]) -> int:
        """Write ``records`` as signed elsewhere, in one transaction; how many were new or different here."""

        def write(conn: sqlite3.Connection) -> int:
            changed = 0
            for record in records:
                found = conn.execute(_SIGNATURE, (record.key, record.origin, record.key_id)).fetchone()
                if found is None or bytes(found[0]) != record.signature:
                    conn.execute(_INSERT, record)
                    changed += 1
            return changed

        return self._call(write)

    def close(self) -> None:
        """Commit queued writes and close both connections. Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def _execute(self, sql: str, params: tuple) -> None:
        try:
            self._writer.execute(sql, params)
        except RuntimeError:
            pass  # closed: a late write is dropped, the answer is still in memory

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return self._writer.call(fn)

    def _check_open(self) -> None:
        if self.closed:
            raise CacheError("The response cache is closed; create a new ResponseCache to use it again.")

    # -- bounds --------------------------------------------------------------------------------------

    def _bound(self, conn: sqlite3.Connection, statements: list[Statement]) -> None:
        """Keep the file within max_rows and max_bytes, trimming the rows that expire first.

        Runs inside every commit that adds answers, before it ends, so no commit
        leaves the file past a bound, whoever else writes to it. That costs tens
        of microseconds per commit, on the writer's thread and without the GIL:
        SQLite counts rows from the pages of its smallest index, which a warm
        file holds in memory, and reads the page counts from the header. A
        commit carries every answer that arrived within the writer's 20 ms.
        """
        if any(sql is _INSERT for sql, _ in statements):
            # Counted once the commit has happened (_settled): a commit that is retried trims again.
            self._trimmed_in_commit = self._trim(conn)

    def _trim(self, conn: sqlite3.Connection) -> int:
        """Delete the rows past a bound, those that expire first; return how many."""
        rows = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        used = pages * page_size
        excess = 0
        if rows > self.max_rows:
            excess = rows - int(self.max_rows * _TRIM_HEADROOM)
        if used > self.max_bytes and rows:
            per_row = used / rows
            excess = max(excess, rows - int(self.max_bytes * _TRIM_HEADROOM / per_row))
        return conn.execute(_TRIM, (excess,)).rowcount if excess > 0 else 0

    def _bound_now(self, conn: sqlite3.Connection) -> None:
        """Trim in a transaction of its own: rows were salvaged into a fresh file outside any commit."""
        conn.execute("BEGIN IMMEDIATE")
        trimmed = self._trim(conn)
        conn.execute("COMMIT")
        if trimmed:
            self.counts.add("trimmed", trimmed)

    # -- failures ------------------------------------------------------------------------------------

    def _read_failed(self, exc: sqlite3.Error) -> None:
        if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
            self._integrity.recover(exc)
            return
        if not self._warned_read:
            self._warned_read = True
            warnings.warn(
                f"Could not read the response cache {self.path} ({exc}); those lookups count as misses. "
                "If this persists, delete the file to start a fresh cache.",
                CacheIntegrityWarning,
                stacklevel=5,
            )

    def _write_failed(self, exc: BaseException | None, statements: list[Statement]) -> None:
        """The writer gave up on a batch: count every answer it held, say so (at most once a minute)."""
        self._trimmed_in_commit = 0  # rolled back with the rest
        dropped = sum(sql is _INSERT for sql, _ in statements)
        if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
            self._integrity.recover(exc)
        if not dropped:
            return
        self.counts.add("dropped", dropped)
        self._dropped_since_warning += dropped
        now = time.monotonic()
        if now < self._next_drop_warning:
            return
        self._next_drop_warning = now + DROP_WARNING_INTERVAL
        count, self._dropped_since_warning = self._dropped_since_warning, 0
        answers = "1 answer" if count == 1 else f"{count} answers"
        warnings.warn(
            f"Could not write {answers} to the response cache {self.path} ({exc}); they stay cached in memory "
            "for this session, and %agent stats counts them. Check free disk space and permissions.",
            CacheIntegrityWarning,
            stacklevel=2,
        )

    def _rebuilt(self) -> None:
        """A damaged file was replaced by a fresh one: the caller puts what it holds there too."""
        self._on_rebuilt(self)


class _Connections:
    """The reader connection, replaced when a damaged file is rebuilt."""

    def __init__(self, reader: sqlite3.Connection):
        self.reader = reader


def _compact(conn: sqlite3.Connection) -> None:
    """Shrink the file to its rows; best effort, since another kernel reading it blocks VACUUM."""
    try:
        conn.execute("VACUUM")
        # In WAL mode VACUUM writes the whole file to the log; fold it back in and empty it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError:
        pass


def _shutdown(writer: Writer, connections: _Connections, lock: threading.Lock) -> None:
    writer.close()
    with lock:  # not under a read in progress on another thread
        connections.reader.close()
