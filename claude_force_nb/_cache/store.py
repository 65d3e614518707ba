"""The cache file: signed answers in SQLite, shared by every kernel on the machine.

The idea follows nbformat's NotebookNotary (HMAC signatures kept in SQLite).
Here every row carries its own signature over canonical bytes that bind the
key, the endpoint, the expiry and the answer together, so a row cannot be
edited, revived or moved to another key or endpoint. Each row also names the
secret that signed it: a row signed with a secret this process does not hold
(another kernel's) is foreign, kept and not served; only a row whose secret is
held here and whose signature fails is tampered with, and removed.

Reads happen on the caller's thread through one connection behind a lock;
writes are queued to a :class:`~claude_force_nb._cache.writer.Writer` thread.
"""

from __future__ import annotations

import math
import os
import sqlite3
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

from .._config import ENV_OLD_SECRETS, ENV_SECRET, user_path
from .._errors import CacheError, CacheIntegrityWarning
from .database import (
    DEFAULT_BUSY_TIMEOUT,
    connect,
    damaged,
    damaged_message,
    open_database,
    set_aside,
)
from .database import (
    inode as _inode,
)
from .rows import COLUMNS, Record, Row, payload
from .salvage import salvage
from .secret import FOREIGN, TAMPERED, VALID, Signer
from .writer import Writer

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
_SELECT_ALL = f"SELECT rowid, {COLUMNS} FROM responses"
# The whole file, a slice at a time, so that no read holds the file for long.
_SELECT_SLICE = f"SELECT rowid, {COLUMNS} FROM responses WHERE rowid > ? ORDER BY rowid LIMIT ?"
_SLICE_ROWS = 500
_INSERT = f"INSERT OR REPLACE INTO responses ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
# Deletes name what they saw, so a row another kernel rewrote meanwhile survives.
_DELETE_BAD = "DELETE FROM responses WHERE rowid = ? AND signature IS ?"
_DELETE_EXPIRED = "DELETE FROM responses WHERE key = ? AND origin = ? AND key_id = ? AND expires <= ?"
_PRUNE = "DELETE FROM responses WHERE expires <= ?"
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


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Store.verify` found: rows that verify, were tampered with, are foreign, or expired."""

    total: int
    ok: int
    bad: tuple[str, ...]  # keys of tampered rows, removed
    expired: tuple[str, ...]
    removed: int
    foreign: int = 0  # signed with a secret this process does not hold: kept, not served

    @property
    def secret_mismatch(self) -> bool:
        """Nothing here verifies, and rows signed with another secret do: the secret is probably the wrong one."""
        return bool(self.foreign) and not self.ok


class Store:
    """Signed rows in one SQLite file (WAL), with writes on a background thread."""

    def __init__(
        self,
        path: str | os.PathLike,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        on_tampered: Callable[[int], None] | None = None,
        on_foreign: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_trimmed: Callable[[int], None] | None = None,
        on_rebuilt: Callable[[Store], None] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self.path = user_path(path)
        self.signer = signer
        self.foreign_seen = False
        self._clock = clock
        self._on_tampered = on_tampered or (lambda count: None)
        self._on_foreign = on_foreign or (lambda count: None)
        self._on_dropped = on_dropped or (lambda count: None)
        self._on_trimmed = on_trimmed or (lambda count: None)
        self._on_rebuilt = on_rebuilt or (lambda store: None)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._pruned = False
        self._swept = False
        self._warned_read = self._warned_tampered = False
        self._dropped_since_warning, self._next_drop_warning = 0, -math.inf
        self._set_aside: set[int | None] = set()  # files found damaged and replaced, by inode
        self._salvaging: Future | None = None  # copying what a damaged file still holds into the fresh one
        self._trimmed_in_commit = 0  # by the commit in progress, on the writer's thread
        # Rows queued but not yet committed, by (key, origin): read as if they were in the file, so an
        # answer the memory tier has already evicted (a burst larger than it) is not asked for again.
        self._pending: dict[tuple[str, str], tuple[Record, Row]] = {}
        # A holder, so that the finalizer closes whichever reader is current after a rebuild.
        damaged: list[Path] = []
        self._connections = _Connections(
            open_database(self.path, busy_timeout=busy_timeout, clock=clock, damaged_aside=damaged.append)
        )
        self._opened = _inode(self.path)  # the file this store reads; another kernel may replace what the path names
        # The writer (and its thread) must not refer back to self, or a store
        # nobody closes would never be collected and its finalizer never run.
        self._writer = Writer(
            partial(connect, self.path, busy_timeout),
            on_error=_weak_handler(self),
            on_settled=_weak_settled(self),
            before_commit=_weak_bound(self),
        )
        # Commits what is queued when the store is collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _shutdown, self._writer, self._connections, self._lock)
        for aside in damaged:
            self._salvage_from(aside)

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
            if self._salvaging is not None:
                self._wait_for_salvage()
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
            verdict = self._verdict(record)
            if verdict != VALID:
                if quiet:
                    continue
                if verdict == FOREIGN:
                    self._foreign()
                else:
                    self._rejected(rowid, record, remove=not replay)
                continue
            now = self._clock()
            if record.expires <= now and not replay:
                if not quiet:
                    self._execute(_DELETE_EXPIRED, (key, record.origin, record.key_id, now))
                continue
            try:
                return record.row()
            except ValueError:  # signed, yet not JSON: written by another version; treat as absent
                continue
        return None

    def _wait_for_salvage(self) -> None:
        salvaging = self._salvaging
        if salvaging is None or salvaging.done():
            self._salvaging = None
        elif not self._writer.on_own_thread():  # the writer cannot wait for its own work
            wait([salvaging])

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

    def _verdict(self, record: Record) -> str:
        try:
            data = payload(record)
        except (TypeError, ValueError, AttributeError, struct.error):
            # A column holds a value of the wrong type: edited, unless the row is not ours to read at all.
            return TAMPERED if self.signer.holds(record.key_id) else FOREIGN
        return self.signer.verify(data, record.signature, record.key_id)

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

    def _settled(self, statements: list[tuple[str, tuple]]) -> None:
        """Queued rows are in the file now (or given up on): reads go to the file again."""
        trimmed, self._trimmed_in_commit = self._trimmed_in_commit, 0
        if trimmed:
            self._on_trimmed(trimmed)
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
        try:
            report = self._call(self._scan)
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self._recover(exc)
            return VerifyReport(0, 0, (), (), 0)
        if report.bad:
            self._on_tampered(len(report.bad))  # counted; the report itself says what was removed
        return report

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

    # -- integrity -----------------------------------------------------------------------------------

    def _rejected(self, rowid: int, record: Record, *, remove: bool = True) -> None:
        """A row signed here failed its check: remove it now, sweep the rest of the file in the background.

        Not ``remove``: replay leaves the (often committed) file as it was, and only reports.
        """
        self._report_tampered(1)
        if not remove:
            return
        self._execute(_DELETE_BAD, (rowid, record.signature))
        if not self._swept:
            # Once per session, on the writer's thread: a full scan must not hold up the caller's loop.
            self._swept = True
            try:
                self._writer.submit(_weakly(self._sweep), transaction=False)
            except RuntimeError:
                pass  # closed

    def _bound(self, conn: sqlite3.Connection, statements: list[tuple[str, tuple]]) -> None:
        """Keep the file within max_rows and max_bytes, trimming the rows that expire first.

        Runs inside every commit that adds answers, before it ends, so no commit
        leaves the file past a bound, whoever else writes to it. That costs tens
        of microseconds per commit, on the writer's thread and without the GIL:
        SQLite counts rows from the pages of its smallest index, which a warm
        file holds in memory, and reads the page counts from the header. A
        commit carries every answer that arrived within a few milliseconds.
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

    def _sweep(self, conn: sqlite3.Connection) -> None:
        """Remove every other row that fails its check, a slice of the file at a time (no long transaction)."""
        bad = 0
        after = 0
        try:
            while True:
                rows = conn.execute(_SELECT_SLICE, (after, _SLICE_ROWS)).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                for rowid, *columns in rows:
                    record = Record._make(columns)
                    if self._verdict(record) == TAMPERED:
                        conn.execute(_DELETE_BAD, (rowid, record.signature))
                        bad += 1
        except sqlite3.DatabaseError as exc:
            if damaged(exc):
                self._recover(exc)
            else:
                self._swept = False  # locked out, say: the next rejected row tries again
        if bad:
            self._report_tampered(bad)

    def _scan(self, conn: sqlite3.Connection, *, keep_expired: bool = False) -> VerifyReport:
        """Check every row on ``conn`` (the writer's, inside its transaction) and delete what fails."""
        now = self._clock()
        ok, foreign = 0, 0
        bad: list[str] = []
        expired: list[str] = []
        for rowid, *columns in conn.execute(_SELECT_ALL).fetchall():
            record = Record._make(columns)
            verdict = self._verdict(record)
            if verdict == FOREIGN:
                foreign += 1
            elif verdict == TAMPERED:
                bad.append(record.key)
                conn.execute(_DELETE_BAD, (rowid, record.signature))
            elif record.expires <= now:
                expired.append(record.key)
                if not keep_expired:
                    conn.execute(_DELETE_EXPIRED, (record.key, record.origin, record.key_id, now))
            else:
                ok += 1
        if foreign:
            self.foreign_seen = True
        removed = len(bad) + (0 if keep_expired else len(expired))
        total = ok + foreign + len(bad) + len(expired)
        return VerifyReport(total, ok, tuple(bad), tuple(expired), removed, foreign)

    def _report_tampered(self, count: int) -> None:
        if not count:
            return
        self._on_tampered(count)
        if not self._warned_tampered:
            self._warned_tampered = True
            warnings.warn(
                f"A cached answer in {self.path} failed its signature check and was removed without being used: "
                "it was edited or damaged outside claude-force-nb. The request will be sent to the API again; "
                "%agent cache verify checks the whole file.",
                CacheIntegrityWarning,
                stacklevel=6,
            )

    def _foreign(self) -> None:
        self._on_foreign(1)
        if not self.foreign_seen:
            self.foreign_seen = True
            warnings.warn(self.foreign_hint(), CacheIntegrityWarning, stacklevel=6)

    def foreign_hint(self) -> str:
        """What to do about rows signed with a secret this process does not hold."""
        return (
            f"Answers in {self.path} were signed with a secret this kernel does not hold ({self.signer.source}), "
            f"so they are kept but not used: set {ENV_SECRET} to the secret that recorded them, or add it to "
            f"{ENV_OLD_SECRETS}."
        )

    # -- failures ------------------------------------------------------------------------------------

    def _read_failed(self, exc: sqlite3.Error) -> None:
        if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
            self._recover(exc)
            return
        if not self._warned_read:
            self._warned_read = True
            warnings.warn(
                f"Could not read the response cache {self.path} ({exc}); those lookups count as misses. "
                "If this persists, delete the file to start a fresh cache.",
                CacheIntegrityWarning,
                stacklevel=5,
            )

    def _write_failed(self, exc: BaseException | None, statements: list[tuple[str, tuple]]) -> None:
        """The writer gave up on a batch: count every answer it held, say so (at most once a minute)."""
        self._trimmed_in_commit = 0  # rolled back with the rest
        dropped = sum(sql is _INSERT for sql, _ in statements)
        if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
            self._recover(exc)
        if not dropped:
            return
        self._on_dropped(dropped)
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

    def _recover(self, exc: BaseException) -> None:
        """The file is damaged: set it aside and carry on with a fresh one, once per damaged file."""
        with self._lock:
            seen = self._opened  # this store's file: if another kernel replaced it already, leave theirs be
            if seen in self._set_aside:
                return
            self._set_aside.add(seen)
            try:
                aside = set_aside(self.path, self._clock, "corrupt", seen)
                fresh = open_database(self.path, busy_timeout=self._busy_timeout, clock=self._clock)
                self._opened = _inode(self.path)
            except (CacheError, OSError, sqlite3.Error) as failure:
                warnings.warn(
                    f"The response cache {self.path} is damaged ({exc}) and could not be rebuilt ({failure}); "
                    "answers stay cached in memory for this session. Delete the file to start afresh.",
                    CacheIntegrityWarning,
                    stacklevel=2,
                )
                return
            damaged_reader, self._connections.reader = self._connections.reader, fresh
            _close_quietly(damaged_reader)
        try:
            self._writer.reconnect()  # what it writes from now on goes to the fresh file
        except RuntimeError:
            pass  # closed
        if aside is not None:  # else another kernel set it aside first, and said so there
            self._salvage_from(aside)
            warnings.warn(
                damaged_message(self.path, exc, aside) + " This session goes on; answers in memory are still served.",
                CacheIntegrityWarning,
                stacklevel=2,
            )
        # What this session holds goes into the fresh file too, whichever kernel rebuilt it.
        self._on_rebuilt(self)

    def _salvage_from(self, aside: Path) -> None:
        """Copy into the fresh file every row of the damaged one that can still be read and is not forged.

        On the writer's thread; until it is done, reads wait for it rather than miss (and ask the API
        again for answers about to come back).
        """
        try:
            salvaging = self._writer.submit(_weakly(self._salvage, aside), transaction=False)
        except RuntimeError:
            return  # closed
        self._salvaging = salvaging
        salvaging.add_done_callback(partial(_salvaged, self.path, aside))

    def _salvage(self, conn: sqlite3.Connection, aside: Path) -> None:
        now = self._clock()
        # Another kernel's rows are kept as they were (it checks them when it reads them);
        # a row that fails this kernel's check was damaged with the file.
        salvage(conn, aside, lambda record: record.expires > now and self._verdict(record) != TAMPERED)
        conn.execute("BEGIN IMMEDIATE")
        trimmed = self._trim(conn)
        conn.execute("COMMIT")
        if trimmed:
            self._on_trimmed(trimmed)


class _Connections:
    """The reader connection, replaced when a damaged file is rebuilt."""

    def __init__(self, reader: sqlite3.Connection):
        self.reader = reader


def _weak_handler(store: Store) -> Callable[[BaseException | None, list[tuple[str, tuple]]], None]:
    ref = weakref.ref(store)

    def on_error(exc: BaseException | None, statements: list[tuple[str, tuple]]) -> None:
        target = ref()
        if target is not None:
            target._write_failed(exc, statements)

    return on_error


def _weak_settled(store: Store) -> Callable[[list[tuple[str, tuple]]], None]:
    ref = weakref.ref(store)

    def on_settled(statements: list[tuple[str, tuple]]) -> None:
        target = ref()
        if target is not None:
            target._settled(statements)

    return on_settled


def _weak_bound(store: Store) -> Callable[[sqlite3.Connection, list[tuple[str, tuple]]], None]:
    ref = weakref.ref(store)

    def before_commit(conn: sqlite3.Connection, statements: list[tuple[str, tuple]]) -> None:
        target = ref()
        if target is not None:
            target._bound(conn, statements)

    return before_commit


def _weakly(method: Callable[..., None], *args: object) -> Callable[[sqlite3.Connection], None]:
    """``method(connection, *args)`` for the writer's queue, without keeping its store alive (whose finalizer
    stops the writer)."""
    ref = weakref.WeakMethod(method)

    def call(conn: sqlite3.Connection) -> None:
        bound = ref()
        if bound is not None:
            bound(conn, *args)

    return call


def _salvaged(path: Path, aside: Path, done: Future) -> None:
    """Say so if copying from a damaged file failed: the fresh file then lacks what it held."""
    exc = done.exception() if not done.cancelled() else None
    if exc is not None:
        warnings.warn(
            f"Could not copy the answers still readable in {aside.name} into the new cache {path} ({exc}); "
            "they will be asked for again.",
            CacheIntegrityWarning,
            stacklevel=2,
        )


def _close_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass


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
