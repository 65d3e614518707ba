"""What can still be read from a damaged cache file, a slice of rows at a time.

SQLite stops a scan at the first page it cannot read. Reading by rowid
ranges, and one rowid at a time within a range that fails, gets past a bad
page to the rows after it. What is read here is only read: the caller checks
every row's signature before it keeps one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .rows import COLUMNS, Record

_SLICE = 256
_RANGE = f"SELECT {COLUMNS} FROM responses WHERE rowid >= ? AND rowid < ?"
_ONE = f"SELECT {COLUMNS} FROM responses WHERE rowid = ?"
# Past the highest rowid found, keep looking this far before deciding the file has no more rows.
_GAP = 64 * _SLICE


def readable_records(path: Path) -> Iterator[Record]:
    """Every row of ``path`` that SQLite can still read, in rowid order; nothing if the file cannot be opened."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
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
