"""One background thread that owns the write connection and commits in batches.

Callers enqueue statements and return at once, so storing an answer never
waits on the disk or on another process's write lock: the event loop keeps
running while SQLite commits. Statements that arrive within 20 ms of the first
go into one transaction: a sweep's answers, arriving one by one, commit a few
dozen at a time instead of one each, and this thread takes the GIL from the
event loop once per batch. A reader sees queued answers before they commit.
"""

from __future__ import annotations

import itertools
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_STOP = object()
_RECONNECT = object()
# A transaction that cannot get the lock within busy_timeout is retried this
# many times before its statements are given up (and reported).
_ATTEMPTS = 3


# A statement and its parameters.
Statement = tuple[str, tuple]


class _Task:
    __slots__ = ("fn", "future", "transaction")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], transaction: bool = True):
        self.fn = fn
        self.transaction = transaction
        self.future: Future = Future()


class Writer:
    """Runs queued SQL on its own thread and connection."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        on_error: Callable[[BaseException | None, list[Statement]], None],
        on_settled: Callable[[list[Statement]], None] | None = None,
        before_commit: Callable[[sqlite3.Connection, list[Statement]], None] | None = None,
        batch_size: int = 512,
        linger: float = 0.02,
    ):
        self._connect = connect
        self._on_error = on_error
        self._on_settled = on_settled
        self._before_commit = before_commit
        self._batch_size = batch_size
        self._linger = linger
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._hurry = threading.Event()

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Queue one statement; it commits with the next batch."""
        self._submit((sql, params))

    def call(self, fn: Callable[[sqlite3.Connection], T], *, transaction: bool = True) -> T:
        """Run ``fn(connection)`` after everything queued, in its own transaction unless told not to; wait for it.

        Without a transaction ``fn`` may run statements SQLite refuses inside one (VACUUM).
        """
        task = _Task(fn, transaction)
        self._submit(task)
        return task.future.result()

    def submit(self, fn: Callable[[sqlite3.Connection], object], *, transaction: bool = True) -> Future:
        """Queue ``fn(connection)`` to run after everything queued (in its own transaction, unless told not to);
        return at once."""
        task = _Task(fn, transaction)
        self._submit(task)
        return task.future

    def reconnect(self) -> None:
        """Open the path afresh for what is queued from now on (the file behind it was replaced)."""
        self._submit(_RECONNECT)

    def flush(self) -> None:
        """Wait until everything queued so far is committed (or reported as failed)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._submit(done)
        while not done.wait(0.5):
            if not self._thread.is_alive():
                return

    def close(self) -> None:
        """Commit what is queued and stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            self._hurry.set()
            # A finalizer can run on this very thread (garbage collection
            # happens wherever objects are allocated); it cannot join itself.
            if thread is not threading.current_thread():
                thread.join()

    @property
    def closed(self) -> bool:
        return self._closed

    def on_own_thread(self) -> bool:
        """Whether the caller is this writer's thread (which must not wait for work queued behind it)."""
        return self._thread is threading.current_thread()

    def _submit(self, item: object) -> None:
        if self._thread is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("The cache writer is closed.")
                if self._thread is None:
                    # Daemon, so a forgotten cache never keeps the interpreter
                    # alive; the store's finalizer closes it at exit instead.
                    self._thread = threading.Thread(target=self._run, name="claude-force-nb-cache-writer", daemon=True)
                    self._thread.start()
        elif self._closed:
            raise RuntimeError("The cache writer is closed.")
        self._queue.put(item)
        if type(item) is not tuple:
            self._hurry.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                batch = [self._queue.get()]
                if type(batch[0]) is tuple and self._linger > 0:
                    # Let a burst of answers gather into one transaction: fewer
                    # commits, and this thread wakes (and takes the GIL from the
                    # event loop) once per burst rather than once per answer.
                    # flush(), call() and close() cut the wait short.
                    self._hurry.wait(self._linger)
                    self._hurry.clear()
                while len(batch) < self._batch_size and type(batch[-1]) is tuple:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                statements: list[Statement] = []
                for item in batch:
                    if type(item) is tuple:
                        statements.append(item)
                        continue
                    # Anything else waits for the statements queued before it.
                    conn = self._commit(conn, statements)
                    statements = []
                    if item is _STOP:
                        return
                    if item is _RECONNECT:
                        _close(conn)
                        conn = None
                        continue
                    if isinstance(item, threading.Event):
                        item.set()
                    else:
                        conn = self._run_task(conn, item)
                conn = self._commit(conn, statements)
        finally:
            if conn is not None:
                conn.close()

    def _commit(self, conn: sqlite3.Connection | None, statements: list[Statement]) -> sqlite3.Connection | None:
        if not statements:
            return conn
        error: BaseException | None = None
        for _ in range(_ATTEMPTS):
            try:
                if conn is None:
                    conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                # A run of one statement (a burst of answers) goes to SQLite in one call.
                for sql, run in itertools.groupby(statements, key=_sql):
                    conn.executemany(sql, [params for _, params in run])
                if self._before_commit is not None:
                    self._before_commit(conn, statements)
                conn.execute("COMMIT")
                self._settled(statements)
                return conn
            except sqlite3.OperationalError as exc:
                # Locked past busy_timeout, disk full, read-only: roll back and retry.
                error = exc
                _rollback(conn)
            except Exception as exc:
                error = exc
                _rollback(conn)
                break
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            # The file itself is bad: let go of it, so the next batch opens whatever file the path names
            # by then (the store sets a damaged one aside and starts a fresh one).
            _close(conn)
            conn = None
        self._report(error, statements)
        self._settled(statements)
        return conn

    def _settled(self, statements: list[Statement]) -> None:
        """Tell the owner these statements are done with: committed, or given up and reported."""
        if self._on_settled is None:
            return
        try:
            self._on_settled(statements)
        except Exception:  # the owner's bookkeeping must not stop the writer
            pass

    def _report(self, error: BaseException | None, statements: list[Statement]) -> None:
        try:
            self._on_error(error, statements)
        except Exception:
            # A warning filter set to "error" must not kill the writer thread.
            pass

    def _run_task(self, conn: sqlite3.Connection | None, task: _Task) -> sqlite3.Connection | None:
        try:
            if conn is None:
                conn = self._connect()
            if not task.transaction:
                result = task.fn(conn)
            else:
                conn.execute("BEGIN IMMEDIATE")
                result = task.fn(conn)
                conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn)
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)
        return conn


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:
            pass


def _rollback(conn: sqlite3.Connection | None) -> None:
    if conn is not None and conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _sql(statement: Statement) -> str:
    return statement[0]
