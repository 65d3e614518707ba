"""What can still be read from a damaged cache file, copied into the fresh one a slice at a time.

SQLite stops a scan at the first page it cannot read. Reading by rowid
ranges, and one rowid at a time within a range that fails, gets past a bad
page to the rows after it. The caller decides which rows to keep (it checks
their signatures); each slice commits on its own, so another kernel waiting
to write never waits for the whole file.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

from .._errors import CacheIntegrityWarning
from .rows import COLUMNS, Record

_SLICE = 256
_RANGE = f"SELECT {COLUMNS} FROM responses WHERE rowid >= ? AND rowid < ?"
_ONE = f"SELECT {COLUMNS} FROM responses WHERE rowid = ?"
# Past the highest rowid found, keep looking this far before deciding the file has no more rows.
_GAP = 64 * _SLICE
# A row salvaged never replaces one written since.
_INSERT_KEEP = f"INSERT OR IGNORE INTO responses ({COLUMNS}) VALUES ({', '.join('?' * 15)})"


def salvage(conn: sqlite3.Connection, aside: Path, keep: Callable[[Record], bool]) -> int:
    """Copy the rows of ``aside`` that can be read and that ``keep`` accepts into ``conn``'s file; return how many."""
    kept = 0
    records: list[Record] = []
    for record in readable_records(aside):
        if keep(record):
            records.append(record)
        if len(records) >= _SLICE:
            kept += _insert(conn, records)
            records = []
    return kept + _insert(conn, records)


def salvaged(path: Path, aside: Path, done: Future) -> None:
    """Say so if copying from a damaged file failed: the fresh file then lacks what it held."""
    exc = done.exception() if not done.cancelled() else None
    if exc is not None:
        warnings.warn(
            f"Could not copy the answers still readable in {aside.name} into the new cache {path} ({exc}); "
            "they will be asked for again.",
            CacheIntegrityWarning,
            stacklevel=2,
        )


def _insert(conn: sqlite3.Connection, records: list[Record]) -> int:
    if not records:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT_KEEP, records)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(records)


def readable_records(path: Path) -> Iterator[Record]:
    """Every row of ``path`` that SQLite can still read, in rowid order; nothing if the file cannot be opened."""
    try:
        # A URI, so that the file opens read-only; as_uri() escapes what a path may hold (#, ?, %).
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        yield from _records(conn, _highest_rowid(conn))
    finally:
        conn.close()


def _highest_rowid(conn: sqlite3.Connection) -> int | None:
    try:
        return conn.execute("SELECT max(rowid) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return None  # the table's last pages are among the damaged ones: look until a long gap


def _records(conn: sqlite3.Connection, highest: int | None) -> Iterator[Record]:
    start, last_found = 1, 0
    while (start <= highest) if highest is not None else (start <= last_found + _GAP):
        try:
            rows = conn.execute(_RANGE, (start, start + _SLICE)).fetchall()
        except sqlite3.DatabaseError:
            rows = list(_one_by_one(conn, start, start + _SLICE))
        for row in rows:
            record = _record(row)
            if record is not None:
                yield record
        if rows:
            last_found = start + _SLICE
        start += _SLICE


def _one_by_one(conn: sqlite3.Connection, start: int, end: int) -> Iterator[tuple]:
    for rowid in range(start, end):
        try:
            row = conn.execute(_ONE, (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            yield row


def _record(row: tuple) -> Record | None:
    try:
        return Record._make(row)
    except TypeError:  # a row of the wrong shape: nothing to keep
        return None
