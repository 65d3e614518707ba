"""Message Batches a kernel submitted, and what each request in them stands for: kept in the cache file,
or in the team database (:mod:`.team_journal`), where any machine of the team finds them.

A request is written down before its batch is submitted, and the batch id as
soon as the API gives it, so a kernel that restarts mid-batch finds the batch
again, collects what it paid for, and never submits a request twice. Requests
go by their ``custom_id``, which is the cache key of the request.

The journal's statements are written once, for SQLite; a :class:`Place` runs
them on its own database (see :class:`Place`).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._cache.database import connect, private_directory, private_file

_CREATE = (
    """CREATE TABLE IF NOT EXISTS {jobs} (
        job       INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id  TEXT UNIQUE,
        origin    TEXT NOT NULL,
        created   REAL NOT NULL,
        size      INTEGER NOT NULL,
        state     TEXT NOT NULL,
        owner     TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS {requests} (
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


class Place(Protocol):
    """Where a journal lives: a database that runs the journal's statements.

    The statements name their tables ``{jobs}`` and ``{requests}`` and their
    parameters ``?``; a place's transaction yields a connection that fills
    both in for its own database.
    """

    where: str  # for messages, and to tell two journals' job numbers apart
    failures: tuple[type[BaseException], ...]  # what its operations raise when the database cannot take them

    def transaction(self) -> Any: ...  # a context manager yielding a Connection, committed on success
    def insert_job(self, conn: Connection, values: tuple) -> int: ...
    def close(self) -> None: ...


class Connection(Protocol):
    def execute(self, sql: str, params: tuple = ()) -> Any: ...
    def executemany(self, sql: str, rows: list[tuple]) -> Any: ...


class BatchJournal:
    """The jobs and requests of one cache file (a path) or one team database (a :class:`Place`); safe across
    threads and kernels."""

    def __init__(self, place: Path | Place, *, clock: Callable[[], float] = time.time):
        self._place: Place = CacheFile(place) if isinstance(place, Path) else place
        self._clock = clock

    @property
    def where(self) -> str:
        """The file, or the database, for messages."""
        return self._place.where

    @property
    def path(self) -> Path | None:
        """The cache file it is kept in; None in a team database."""
        return self._place.path if isinstance(self._place, CacheFile) else None

    @property
    def failures(self) -> tuple[type[BaseException], ...]:
        return self._place.failures

    def begin(self, origin: str, entries: Iterable[JobRequest]) -> int:
        """Write down a job's requests before it is submitted, as this process's; its number."""
        rows = list(entries)
        with self._place.transaction() as conn:
            job = self._place.insert_job(conn, (origin, self._clock(), len(rows), SUBMITTING, OWNER))
            conn.executemany(
                "INSERT INTO {requests} (job, custom_id, agent, model, task) VALUES (?, ?, ?, ?, ?)",
                [(job, e.custom_id, e.agent, e.model, e.task) for e in rows],
            )
        return job

    def submitted(self, job: int, batch_id: str) -> None:
        with self._place.transaction() as conn:
            conn.execute("UPDATE {jobs} SET batch_id = ?, state = ? WHERE job = ?", (batch_id, SUBMITTED, job))

    def finish(self, job: int, state: str) -> None:
        """A job is over (collected, canceled or lost): its requests are forgotten, the job kept for the record."""
        with self._place.transaction() as conn:
            conn.execute("UPDATE {jobs} SET state = ? WHERE job = ?", (state, job))
            conn.execute("DELETE FROM {requests} WHERE job = ?", (job,))

    def open_requests(self, origin: str) -> dict[str, Job]:
        """Each ``custom_id`` in a job still open at ``origin``, with its job."""
        with self._place.transaction() as conn:
            rows = conn.execute(
                f"SELECT r.custom_id, {_JOINED_COLUMNS} "
                "FROM {requests} r JOIN {jobs} j ON j.job = r.job WHERE j.origin = ? AND j.state IN (?, ?)",
                (origin, *OPEN),
            ).fetchall()
        return {row[0]: Job(*row[1:]) for row in rows}

    def job(self, number: int) -> Job | None:
        with self._place.transaction() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM {{jobs}} WHERE job = ?", (number,)).fetchone()
        return Job(*row) if row else None

    def entries(self, job: int) -> list[JobRequest]:
        with self._place.transaction() as conn:
            rows = conn.execute("SELECT custom_id, agent, model, task FROM {requests} WHERE job = ?", (job,)).fetchall()
        return [JobRequest(*row) for row in rows]

    def jobs(self, *, open_only: bool = False, limit: int = 100) -> list[Job]:
        """The newest jobs first."""
        where = f"WHERE state IN ('{SUBMITTING}', '{SUBMITTED}')" if open_only else ""
        with self._place.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM {{jobs}} {where} ORDER BY job DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Job(*row) for row in rows]

    def find(self, batch_id: str) -> Job | None:
        with self._place.transaction() as conn:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM {{jobs}} WHERE batch_id = ?", (batch_id,)).fetchone()
        return Job(*row) if row else None

    def close(self) -> None:
        self._place.close()


class CacheFile:
    """The journal's place in a cache file: tables ``batch_jobs`` and ``batch_requests``, one connection."""

    failures: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[Named]:
        """The lock, and one SQLite transaction, committed on success."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Named(conn, FILE_TABLES)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def insert_job(self, conn: Connection, values: tuple) -> int:
        cursor = conn.execute(
            "INSERT INTO {jobs} (batch_id, origin, created, size, state, owner) VALUES (NULL, ?, ?, ?, ?, ?)", values
        )
        job = cursor.lastrowid
        assert job is not None
        return int(job)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            private_directory(self.path.parent)  # the journal may be the first to create the file
            private_file(self.path)
            conn = connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            for statement in _CREATE:
                conn.execute(statement.format(**FILE_TABLES))
            self._conn = conn
        return self._conn


# The journal's tables in a cache file (older files have them under these names).
FILE_TABLES = {"jobs": "batch_jobs", "requests": "batch_requests"}


class Named:
    """A connection that names the journal's tables, and its parameters, as its database does."""

    def __init__(self, conn: Any, tables: dict[str, str], marker: str = "?"):
        self._conn = conn
        self._tables = tables
        self._marker = marker

    def execute(self, sql: str, params: tuple = ()) -> Any:
        return self._conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple]) -> Any:
        return self._conn.cursor().executemany(self._sql(sql), rows)

    def _sql(self, sql: str) -> str:
        sql = sql.format(**self._tables)
        return sql if self._marker == "?" else sql.replace("?", self._marker)
