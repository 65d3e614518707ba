"""Message Batches a kernel submitted, and what each request in them stands for, kept in the cache file.

A request is written down before its batch is submitted, and the batch id as
soon as the API gives it, so a kernel that restarts mid-batch finds the batch
again, collects what it paid for, and never submits a request twice. Requests
go by their ``custom_id``, which is the cache key of the request.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .._cache.database import connect, private_directory, private_file

_CREATE = (
    """CREATE TABLE IF NOT EXISTS batch_jobs (
        job       INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id  TEXT UNIQUE,
        origin    TEXT NOT NULL,
        created   REAL NOT NULL,
        size      INTEGER NOT NULL,
        state     TEXT NOT NULL,
        owner     TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS batch_requests (
        job       INTEGER NOT NULL,
        custom_id TEXT NOT NULL,
        agent     TEXT NOT NULL,
        model     TEXT NOT NULL,
        task      TEXT NOT NULL,
        PRIMARY KEY (job, custom_id)
    )""",
)
# A job's states: its requests are written down (SUBMITTING), the API took them (SUBMITTED), and
# then one of the last three. LOST: the endpoint no longer knows the batch (a local server restarted).
SUBMITTING, SUBMITTED, COLLECTED, CANCELED, LOST = "submitting", "submitted", "collected", "canceled", "lost"
OPEN = (SUBMITTING, SUBMITTED)
_JOB_COLUMNS = "job, batch_id, origin, created, size, state, owner"
_JOINED_COLUMNS = "j.job, j.batch_id, j.origin, j.created, j.size, j.state, j.owner"
# Who submits a job: a submission still in progress is told from one a dead process left behind by this.
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process that wrote ``owner`` may still be running (on another host: assume it is)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return host != ""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


@dataclass(frozen=True, slots=True)
class Job:
    """One submission: ``batch_id`` is None until the API has answered the submission."""

    job: int
    batch_id: str | None
    origin: str
    created: float
    size: int
    state: str
    owner: str = ""  # host and process that submitted it: "host:pid"


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What one ``custom_id`` of a job stands for."""

    custom_id: str
    agent: str
    model: str
    task: str


class BatchJournal:
    """The ``batch_jobs`` and ``batch_requests`` tables of one cache file; safe across threads and kernels."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def begin(self, origin: str, entries: Iterable[JobRequest]) -> int:
        """Write down a job's requests before it is submitted, as this process's; its number."""
        rows = list(entries)
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO batch_jobs (batch_id, origin, created, size, state, owner) VALUES (NULL, ?, ?, ?, ?, ?)",
                (origin, self._clock(), len(rows), SUBMITTING, OWNER),
            )
            job = cursor.lastrowid
            assert job is not None
            conn.executemany(
                "INSERT INTO batch_requests (job, custom_id, agent, model, task) VALUES (?, ?, ?, ?, ?)",
                [(job, e.custom_id, e.agent, e.model, e.task) for e in rows],
            )
        return job

    def submitted(self, job: int, batch_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE batch_jobs SET batch_id = ?, state = ? WHERE job = ?", (batch_id, SUBMITTED, job))

    def finish(self, job: int, state: str) -> None:
        """A job is over (collected, canceled or lost): its requests are forgotten, the job kept for the record."""
        with self._transaction() as conn:
            conn.execute("UPDATE batch_jobs SET state = ? WHERE job = ?", (state, job))
            conn.execute("DELETE FROM batch_requests WHERE job = ?", (job,))

    def open_requests(self, origin: str) -> dict[str, Job]:
        """Each ``custom_id`` in a job still open at ``origin``, with its job."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT r.custom_id, {_JOINED_COLUMNS} "
                "FROM batch_requests r JOIN batch_jobs j ON j.job = r.job WHERE j.origin = ? AND j.state IN (?, ?)",
                (origin, *OPEN),
            ).fetchall()
        return {row[0]: Job(*row[1:]) for row in rows}

    def job(self, number: int) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM batch_jobs WHERE job = ?", (number,)).fetchone()
        return Job(*row) if row else None

    def entries(self, job: int) -> list[JobRequest]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT custom_id, agent, model, task FROM batch_requests WHERE job = ?", (job,)
            ).fetchall()
        return [JobRequest(*row) for row in rows]

    def jobs(self, *, open_only: bool = False, limit: int = 100) -> list[Job]:
        """The newest jobs first."""
        where = f"WHERE state IN ('{SUBMITTING}', '{SUBMITTED}')" if open_only else ""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM batch_jobs {where} ORDER BY job DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Job(*row) for row in rows]

    def find(self, batch_id: str) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM batch_jobs WHERE batch_id = ?", (batch_id,)).fetchone()
        return Job(*row) if row else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _transaction(self) -> _Transaction:
        return _Transaction(self)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            private_directory(self.path.parent)  # the journal may be the first to create the file
            private_file(self.path)
            conn = connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            for statement in _CREATE:
                conn.execute(statement)
            self._conn = conn
        return self._conn


class _Transaction:
    """The journal's lock and one SQLite transaction, committed on success."""

    def __init__(self, journal: BatchJournal):
        self._journal = journal

    def __enter__(self) -> sqlite3.Connection:
        self._journal._lock.acquire()
        try:
            conn = self._journal._connection()
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._journal._lock.release()
            raise
        self._conn = conn
        return conn

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            self._conn.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self._journal._lock.release()
