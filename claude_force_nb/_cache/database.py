"""Opening the cache database: WAL, a versioned schema, and a damaged file set aside.

As nbformat does with its signature database, a file that SQLite cannot read
is renamed with a timestamp and replaced by an empty one: a cache is worth
less than the work it would interrupt.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from .._config import ENV_HOME
from .._errors import CacheFileError, CacheIntegrityWarning

CACHE_FILENAME = "cache.sqlite"
# Answers from the offline server never mix with Claude's: setting a key
# later must not serve synthetic text from the cache.
OFFLINE_CACHE_FILENAME = "offline-cache.sqlite"
SCHEMA_VERSION = 2  # kept in PRAGMA user_version
DEFAULT_BUSY_TIMEOUT = 5.0

_CREATE = (
    """CREATE TABLE IF NOT EXISTS responses (
        key           TEXT NOT NULL,
        origin        TEXT NOT NULL,
        synthetic     INTEGER NOT NULL,
        agent         TEXT NOT NULL,
        model         TEXT NOT NULL,
        task          TEXT NOT NULL,
        response      TEXT NOT NULL,
        request_id    TEXT,
        input_tokens  INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        latency       REAL NOT NULL,
        created       REAL NOT NULL,
        expires       REAL NOT NULL,
        key_id        TEXT NOT NULL,
        signature     BLOB NOT NULL,
        PRIMARY KEY (key, origin, key_id)
    )""",
    "CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires)",
)
_MMAP_BYTES = 64 << 20
# SQLite result codes (primary code in the low byte) that mean the file itself is bad.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def connect(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> sqlite3.Connection:
    """A connection in autocommit mode that waits ``busy_timeout`` for another kernel's lock."""
    # timeout= sets SQLite's busy_timeout.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last
    # commits, which for a cache only means calling again.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def open_database(
    path: Path,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    clock: Callable[[], float] = time.time,
    damaged_aside: Callable[[Path], object] | None = None,
) -> sqlite3.Connection:
    """Connect to ``path``, creating the schema; set a damaged or outdated file aside (with a warning) first.

    ``damaged_aside`` is told where a damaged file went, for what can still be read from it.
    """
    try:
        private_directory(path.parent)
        private_file(path)
        seen = inode(path)
        return _open_schema(path, busy_timeout)
    except _Outdated as old:
        aside = set_aside(path, clock, f"format{old.version}", seen)
        if aside is not None:
            warnings.warn(
                f"The response cache {path} was written by an earlier claude-force-nb (format {old.version}). It "
                f"was moved to {aside.name} and a new cache started: answers are now filed by the endpoint that "
                "gave them, which the old file does not record. Those requests will be sent again once.",
                CacheIntegrityWarning,
                stacklevel=4,
            )
    except sqlite3.DatabaseError as exc:
        if not damaged(exc):
            raise _cannot_open(path, exc) from exc
        aside = set_aside(path, clock, "corrupt", seen)
        if aside is not None:
            warnings.warn(damaged_message(path, exc, aside), CacheIntegrityWarning, stacklevel=4)
            if damaged_aside is not None:
                damaged_aside(aside)
    except OSError as exc:
        raise _cannot_open(path, exc) from exc
    try:
        private_file(path)
        return _open_schema(path, busy_timeout)
    except (sqlite3.Error, OSError) as exc:
        raise _cannot_open(path, exc) from exc


def private_directory(directory: Path) -> None:
    """Make ``directory`` and its missing parents, each readable by its owner only, whatever the umask."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another kernel, with its own umask: left as it is
        os.chmod(candidate, 0o700)  # mkdir's mode passes through the umask; this does not


def private_file(path: Path) -> None:
    """Make ``path`` if missing, readable by its owner only; tighten it if others can read it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        except OSError:
            pass  # someone else's file: reading it is enough, and the open says if not
        return
    try:
        os.fchmod(fd, 0o600)  # whatever the umask; SQLite gives its -wal and -shm files the same mode
    finally:
        os.close(fd)


def _open_schema(path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = connect(path, busy_timeout)
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        # Reads through a memory map skip a copy per page (this becomes the reader connection).
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}").fetchall()
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        if version == 0:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another kernel may have created it while we waited for the lock.
                if conn.execute("PRAGMA user_version").fetchall()[0][0] == 0:
                    for statement in _CREATE:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        elif version < SCHEMA_VERSION:
            raise _Outdated(version)
        elif version > SCHEMA_VERSION:
            raise CacheFileError(
                f"The response cache {path} has schema version {version}; this claude-force-nb reads version "
                f"{SCHEMA_VERSION}. Upgrade claude-force-nb, or pass another path."
            )
        return conn
    except BaseException:
        conn.close()
        raise


class _Outdated(Exception):
    """A file in an earlier format; it is set aside, not read."""

    def __init__(self, version: int):
        super().__init__(version)
        self.version = version


def damaged_message(path: Path, exc: BaseException, aside: Path) -> str:
    return (
        f"The response cache {path} was damaged ({exc}). It was moved to {aside.name} and a new cache was started "
        "with every answer that can still be read from it and verified; only the others are lost. Delete the old "
        "file when you no longer need it."
    )


def inode(path: Path) -> int | None:
    """The file ``path`` names now (None if none): changes when another kernel replaces it."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def set_aside(path: Path, clock: Callable[[], float], label: str, seen: int | None) -> Path | None:
    """Rename ``path`` (and its log) to ``path.label-<time>``; None if another kernel already replaced it.

    ``seen`` is the inode of the file that was found wanting: when the path
    names another file by now, another kernel has set this one aside and
    started a fresh one, which must not be moved in turn.
    """
    if seen is not None and inode(path) != seen:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(clock()))
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    try:
        # The log and index first: another kernel that finds the path free may start a new file with its
        # own -wal and -shm at once, and those must not be moved in their turn.
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        os.replace(path, aside)
    except OSError as exc:
        raise CacheFileError(
            f"The response cache {path} could not be moved aside ({exc.strerror}). Delete it to start a fresh cache."
        ) from exc
    return aside


def damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether ``exc`` says the file itself is bad (malformed, or not a database)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # Python 3.10: only the class tells; OperationalError is "busy", "cannot open"...
        return type(exc) is sqlite3.DatabaseError
    return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _cannot_open(path: Path, exc: BaseException) -> CacheFileError:
    problem = f"Could not open the response cache {path}: {exc}."
    return CacheFileError(
        f"{problem} Set {ENV_HOME} to a writable directory, pass another path, or use persist=False to cache in "
        "memory only.",
        problem=problem,
    )
