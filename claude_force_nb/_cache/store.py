"""The cache file: signed answers in SQLite, shared by every kernel on the machine.

The idea follows nbformat's NotebookNotary (HMAC signatures kept in SQLite).
Here every row carries its own signature over canonical bytes that bind the
key, the expiry and the answer together, so a row cannot be edited, revived
or moved to another key.

Reads happen on the caller's thread through one connection behind a lock;
writes are queued to a :class:`~claude_force_nb._cache.writer.Writer` thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

from .._config import ENV_OLD_SECRETS, ENV_SECRET
from .._errors import CacheError, CacheIntegrityWarning
from .._request import Completion
from .database import DEFAULT_BUSY_TIMEOUT, connect, open_database
from .secret import Signer
from .writer import Writer

TASK_SUMMARY_CHARS = 80
T = TypeVar("T")

# In the order of Record's fields, so a fetched tuple maps onto a Record as it is.
_COLUMNS = (
    "key, agent, model, task, response, request_id, input_tokens, output_tokens, latency, created, expires, signature"
)
_SELECT_ONE = f"SELECT {_COLUMNS} FROM responses WHERE key = ?"
_SELECT_ALL = f"SELECT rowid, {_COLUMNS} FROM responses"
_INSERT = f"INSERT OR REPLACE INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Deletes name what they saw, so a row another kernel rewrote meanwhile survives.
_DELETE_BAD = "DELETE FROM responses WHERE rowid = ? AND signature IS ?"
_DELETE_EXPIRED = "DELETE FROM responses WHERE key = ? AND expires <= ?"
_PRUNE = "DELETE FROM responses WHERE expires <= ?"

_PAYLOAD_HEADER = b"claude-force-nb/row/1\x00"
_NUMBERS = struct.Struct(">qqddd")


@dataclass(frozen=True, slots=True)
class Row:
    """One cached answer with the summary stored beside it."""

    key: str
    completion: Completion
    created: float
    expires: float
    agent: str = ""
    model: str = ""
    task: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class Record(NamedTuple):
    """A row as the file holds it: every column, the signature last."""

    key: str
    agent: str
    model: str
    task: str
    response: str  # the Messages API JSON
    request_id: str | None
    input_tokens: int
    output_tokens: int
    latency: float
    created: float
    expires: float
    signature: bytes = b""


class _Rejected(NamedTuple):
    """A row that failed its signature check, named so that its deletion spares a rewritten row."""

    key: str
    signature: bytes
    rowid: int


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Store.verify` found: keys that failed, keys that expired."""

    total: int
    ok: int
    bad: tuple[str, ...]
    expired: tuple[str, ...]
    removed: int
    secret_mismatch: bool


def _payload(record: Record) -> bytes:
    """The canonical bytes a row's signature covers: every column but the signature."""
    parts = [
        _PAYLOAD_HEADER,
        _NUMBERS.pack(record.input_tokens, record.output_tokens, record.latency, record.created, record.expires),
    ]
    for text in (record.key, record.agent, record.model, record.task, record.response):
        data = text.encode()
        parts.append(b"%d:" % len(data))
        parts.append(data)
    if record.request_id is None:
        parts.append(b"N")
    else:
        data = record.request_id.encode()
        parts.append(b"s%d:" % len(data))
        parts.append(data)
    return b"".join(parts)


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
    ):
        self.path = Path(path)
        self.signer = signer
        self.secret_mismatch = False
        self._clock = clock
        self._on_tampered = on_tampered or (lambda count: None)
        self._lock = threading.Lock()
        self._pruned = False
        self._warned_read = self._warned_write = False
        self._reader = open_database(self.path, busy_timeout=busy_timeout, clock=clock)
        # The writer (and its thread) must not refer back to self, or a store
        # nobody closes would never be collected and its finalizer never run.
        self._writer = Writer(partial(connect, self.path, busy_timeout), on_error=_weak_handler(self))
        # Commits what is queued when the store is collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _shutdown, self._writer, self._reader, self._lock)

    # -- reading -------------------------------------------------------------------------------------

    def get(self, key: str, *, expired_ok: bool = False) -> Row | None:
        """The row for ``key`` if it is present, signed by us and not expired (or ``expired_ok``)."""
        if self._writer.closed:
            return None
        try:
            with self._lock:
                rows = self._reader.execute(_SELECT_ONE, (key,)).fetchall()  # fetchall ends the read
        except sqlite3.ProgrammingError:
            return None  # closed (at exit, say) while this read waited for the lock
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return None
        if not rows:
            return None
        record = Record._make(rows[0])
        if not self._valid(record):
            self._rejected()
            return None
        now = self._clock()
        if record.expires <= now and not expired_ok:
            self._execute(_DELETE_EXPIRED, (key, now))
            return None
        completion = Completion(json.loads(record.response), record.latency, record.request_id)
        return Row(
            key,
            completion,
            record.created,
            record.expires,
            record.agent,
            record.model,
            record.task,
            record.input_tokens,
            record.output_tokens,
        )

    def count(self) -> int:
        with self._lock:
            return self._reader.execute("SELECT count(*) FROM responses").fetchall()[0][0]

    def size(self) -> int:
        """Bytes on disk, including the write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except OSError:
                pass
        return total

    def _valid(self, record: Record) -> bool:
        try:
            payload = _payload(record)
        except (TypeError, ValueError, AttributeError, struct.error):
            return False  # a column holds a value of the wrong type: edited
        return self.signer.verify(payload, record.signature)

    # -- writing -------------------------------------------------------------------------------------

    def put(self, row: Row) -> None:
        """Sign ``row`` now and queue it; it reaches the file with the next batch."""
        if self._writer.closed:
            return
        c = row.completion
        response = json.dumps(c.message, separators=(",", ":"), ensure_ascii=False)
        summary = " ".join(row.task[: 2 * TASK_SUMMARY_CHARS].split())[:TASK_SUMMARY_CHARS]
        record = Record(
            row.key,
            row.agent,
            row.model,
            summary,
            response,
            c.request_id,
            c.input_tokens,
            c.output_tokens,
            float(c.latency),
            float(row.created),
            float(row.expires),
        )
        try:
            payload = _payload(record)
        except UnicodeEncodeError:
            # Lone surrogates cannot be stored as UTF-8 text; escaped, they can.
            record = record._replace(response=json.dumps(c.message, separators=(",", ":")))
            payload = _payload(record)
        record = record._replace(signature=self.signer.sign(payload))
        if not self._pruned:
            # Once per session, on the first write, so read-only sessions never write.
            self._pruned = True
            self._execute(_PRUNE, (self._clock(),))
        self._execute(_INSERT, record)

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
        """Check every row; remove bad and expired ones (unless the secret looks wrong)."""
        self._check_open()
        self.flush()
        report = self._scan()
        self.flush()
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

    def _rejected(self) -> None:
        """A row failed its signature: find every such row, remove them, say so once."""
        if self.secret_mismatch:
            # Already reported; these rows are kept for the secret that made them.
            self._on_tampered(1)
            return
        report = self._scan()
        # Wait for the deletes, so the next lookup does not find (and report) the same rows.
        self.flush()
        self._on_tampered(max(len(report.bad), 1))
        if report.bad:
            warnings.warn(self._integrity_message(report), CacheIntegrityWarning, stacklevel=5)

    def _scan(self) -> VerifyReport:
        now = self._clock()
        ok, bad, expired = 0, list[_Rejected](), list[str]()
        with self._lock:
            for rowid, *columns in self._reader.execute(_SELECT_ALL):
                record = Record._make(columns)
                if not self._valid(record):
                    bad.append(_Rejected(record.key, record.signature, rowid))
                elif record.expires <= now:
                    expired.append(record.key)
                else:
                    ok += 1
        # Nothing verifies at all: more likely a changed secret than a forger,
        # and deleting a whole recorded cache for that would be worse.
        mismatch = bool(bad) and not ok and not expired
        removed = 0
        if mismatch:
            self.secret_mismatch = True
        else:
            for rejected in bad:
                self._execute(_DELETE_BAD, (rejected.rowid, rejected.signature))
            removed += len(bad)
        for key in expired:
            self._execute(_DELETE_EXPIRED, (key, now))
        removed += len(expired)
        return VerifyReport(
            ok + len(bad) + len(expired), ok, tuple(rejected.key for rejected in bad), tuple(expired), removed, mismatch
        )

    def _integrity_message(self, report: VerifyReport) -> str:
        n = len(report.bad)
        rows = "1 cached answer" if n == 1 else f"{n} cached answers"
        if report.secret_mismatch:
            return (
                f"None of the {rows} in {self.path} match the cache secret ({self.signer.source}), so none "
                f"will be used. The secret has probably changed: set {ENV_SECRET} to the secret that recorded "
                f"them, or add it to {ENV_OLD_SECRETS}. The rows are kept; answers recorded from now on "
                "replace them."
            )
        return (
            f"{rows} in {self.path} failed the signature check and "
            f"{'was' if n == 1 else 'were'} removed without being used: edited or damaged outside "
            "claude-force-nb, or signed with a secret that is no longer configured. Those requests will be "
            "sent to the API again."
        )

    def _read_failed(self, exc: sqlite3.Error) -> None:
        if not self._warned_read:
            self._warned_read = True
            warnings.warn(
                f"Could not read the response cache {self.path} ({exc}); those lookups count as misses. "
                "If this persists, delete the file to start a fresh cache.",
                CacheIntegrityWarning,
                stacklevel=5,
            )

    def _write_failed(self, exc: BaseException | None) -> None:
        if not self._warned_write:
            self._warned_write = True
            warnings.warn(
                f"Could not write to the response cache {self.path} ({exc}); answers stay cached in memory "
                "for this session. Check free disk space and permissions.",
                CacheIntegrityWarning,
                stacklevel=2,
            )


def _weak_handler(store: Store) -> Callable[[BaseException | None], None]:
    ref = weakref.ref(store)

    def on_error(exc: BaseException | None) -> None:
        target = ref()
        if target is not None:
            target._write_failed(exc)

    return on_error


def _compact(conn: sqlite3.Connection) -> None:
    """Shrink the file to its rows; best effort, since another kernel reading it blocks VACUUM."""
    try:
        conn.execute("VACUUM")
        # In WAL mode VACUUM writes the whole file to the log; fold it back in and empty it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError:
        pass


def _shutdown(writer: Writer, reader: sqlite3.Connection, lock: threading.Lock) -> None:
    writer.close()
    with lock:  # not under a read in progress on another thread
        reader.close()
