"""Whether the cache file and its rows are intact and ours, and what is done when they are not.

Every row carries its own signature over canonical bytes that bind the key,
the endpoint, the expiry and the answer together, so a row cannot be edited,
revived or moved to another key or endpoint. Each row also names the secret
that signed it: a row signed with a secret this process does not hold
(another kernel's) is foreign, kept and not served; only a row whose secret is
held here and whose signature fails is tampered with, and removed.

A file SQLite can no longer read is set aside and replaced by a fresh one,
which gets every row of the old one that can still be read and verified.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from .._config import ENV_OLD_SECRETS, ENV_SECRET
from .._errors import CacheError, CacheIntegrityWarning
from .database import damaged, damaged_message, inode, open_database, set_aside
from .rows import COLUMNS, Record, payload
from .salvage import salvage, salvaged
from .secret import FOREIGN, TAMPERED, Signer
from .stats import StatsCounter
from .writer import Writer

_SELECT_ALL = f"SELECT rowid, {COLUMNS} FROM responses"
# The whole file, a slice at a time, so that no read holds the file for long.
_SELECT_SLICE = f"SELECT rowid, {COLUMNS} FROM responses WHERE rowid > ? ORDER BY rowid LIMIT ?"
_SLICE_ROWS = 500
# Deletes name what they saw, so a row another kernel rewrote meanwhile survives.
_DELETE_BAD = "DELETE FROM responses WHERE rowid = ? AND signature IS ?"
DELETE_EXPIRED = "DELETE FROM responses WHERE key = ? AND origin = ? AND key_id = ? AND expires <= ?"


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


class Reader(Protocol):
    """The holder of a store's reader connection, which a rebuilt file replaces."""

    reader: sqlite3.Connection


class Integrity:
    """The checks one store makes on its file: which rows to serve or remove, and a damaged file rebuilt.

    Its warnings count the store's frames above them (``stacklevel``), so the
    store calls these methods directly from the methods that met the problem.
    """

    def __init__(
        self,
        path: Path,
        signer: Signer,
        writer: Writer,
        connections: Reader,
        lock: threading.Lock,
        *,
        clock: Callable[[], float],
        busy_timeout: float,
        counts: StatsCounter,
        rebuilt: Callable[[], object],
        bound: Callable[[sqlite3.Connection], object],
    ):
        self.path = path
        self.signer = signer
        self.foreign_seen = False
        self.salvaging: Future | None = None  # copying what a damaged file still holds into the fresh one
        self._writer = writer
        self._connections = connections
        self._lock = lock
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._counts = counts
        self._rebuilt = rebuilt  # the store's: what this session holds goes into the fresh file
        self._bound = bound  # the store's: the fresh file kept within its bounds once rows are salvaged into it
        self._swept = False
        self._warned_tampered = False
        self._opened = inode(path)  # the file the store reads; another kernel may replace what the path names
        self._set_aside: set[int | None] = set()  # files found damaged and replaced, by inode

    # -- rows ----------------------------------------------------------------------------------------

    def verdict(self, record: Record) -> str:
        """VALID, FOREIGN (signed with a secret not held here) or TAMPERED."""
        try:
            data = payload(record)
        except (TypeError, ValueError, AttributeError, struct.error):
            # A column holds a value of the wrong type: edited, unless the row is not ours to read at all.
            return TAMPERED if self.signer.holds(record.key_id) else FOREIGN
        return self.signer.verify(data, record.signature, record.key_id)

    def rejected(self, rowid: int, record: Record, *, remove: bool = True) -> None:
        """A row signed here failed its check: remove it now, sweep the rest of the file in the background.

        Not ``remove``: replay leaves the (often committed) file as it was, and only reports.
        """
        self._report_tampered(1)
        if not remove:
            return
        try:
            self._writer.execute(_DELETE_BAD, (rowid, record.signature))
        except RuntimeError:
            pass  # closed: a late delete is dropped, the next session finds the row again
        if not self._swept:
            # Once per session, on the writer's thread: a full scan must not hold up the caller's loop.
            self._swept = True
            try:
                self._writer.submit(weakly(self._sweep), transaction=False)
            except RuntimeError:
                pass  # closed

    def foreign(self) -> None:
        """A row signed with a secret this process does not hold was met (and not served)."""
        self._counts.add("foreign", 1)
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

    def verify(self, call: Callable[[Callable[[sqlite3.Connection], VerifyReport]], VerifyReport]) -> VerifyReport:
        """Check every row on the store's writer (``call``): remove tampered and expired ones, keep foreign ones."""
        try:
            report = call(self._scan)
        except sqlite3.DatabaseError as exc:
            if not damaged(exc):
                raise
            self.recover(exc)
            return VerifyReport(0, 0, (), (), 0)
        if report.bad:
            self._counts.add("tampered", len(report.bad))  # counted; the report itself says what was removed
        return report

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
                    if self.verdict(record) == TAMPERED:
                        conn.execute(_DELETE_BAD, (rowid, record.signature))
                        bad += 1
        except sqlite3.DatabaseError as exc:
            if damaged(exc):
                self.recover(exc)
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
            verdict = self.verdict(record)
            if verdict == FOREIGN:
                foreign += 1
            elif verdict == TAMPERED:
                bad.append(record.key)
                conn.execute(_DELETE_BAD, (rowid, record.signature))
            elif record.expires <= now:
                expired.append(record.key)
                if not keep_expired:
                    conn.execute(DELETE_EXPIRED, (record.key, record.origin, record.key_id, now))
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
        self._counts.add("tampered", count)
        if not self._warned_tampered:
            self._warned_tampered = True
            warnings.warn(
                f"A cached answer in {self.path} failed its signature check and was removed without being used: "
                "it was edited or damaged outside claude-force-nb. The request will be sent to the API again; "
                "%agent cache verify checks the whole file.",
                CacheIntegrityWarning,
                stacklevel=6,
            )

    # -- the file ------------------------------------------------------------------------------------

    def recover(self, exc: BaseException) -> None:
        """The file is damaged: set it aside and carry on with a fresh one, once per damaged file."""
        with self._lock:
            seen = self._opened  # the store's file: if another kernel replaced it already, leave theirs be
            if seen in self._set_aside:
                return
            self._set_aside.add(seen)
            try:
                aside = set_aside(self.path, self._clock, "corrupt", seen)
                fresh = open_database(self.path, busy_timeout=self._busy_timeout, clock=self._clock)
                self._opened = inode(self.path)
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
            self.salvage_from(aside)
            warnings.warn(
                damaged_message(self.path, exc, aside) + " This session goes on; answers in memory are still served.",
                CacheIntegrityWarning,
                stacklevel=2,
            )
        # What this session holds goes into the fresh file too, whichever kernel rebuilt it.
        self._rebuilt()

    def salvage_from(self, aside: Path) -> None:
        """Copy into the fresh file every row of the damaged one that can still be read and is not forged.

        On the writer's thread; until it is done, reads wait for it rather than miss (and ask the API
        again for answers about to come back).
        """
        try:
            salvaging = self._writer.submit(weakly(self._salvage, aside), transaction=False)
        except RuntimeError:
            return  # closed
        self.salvaging = salvaging
        salvaging.add_done_callback(partial(salvaged, self.path, aside))

    def wait_for_salvage(self) -> None:
        salvaging = self.salvaging
        if salvaging is None or salvaging.done():
            self.salvaging = None
        elif not self._writer.on_own_thread():  # the writer cannot wait for its own work
            wait([salvaging])

    def _salvage(self, conn: sqlite3.Connection, aside: Path) -> None:
        now = self._clock()
        # Another kernel's rows are kept as they were (it checks them when it reads them);
        # a row that fails this kernel's check was damaged with the file.
        salvage(conn, aside, lambda record: record.expires > now and self.verdict(record) != TAMPERED)
        self._bound(conn)


def weakly(method: Callable[..., object], *args: object) -> Callable[..., None]:
    """``method(*given, *args)`` for the writer's queue or callbacks, without keeping its object alive.

    The writer's thread holds what it is given for as long as it runs; a store it kept alive would never be
    collected, and its finalizer (which stops the writer) never run.
    """
    ref = weakref.WeakMethod(method)

    def call(*given: object) -> None:
        bound = ref()
        if bound is not None:
            bound(*given, *args)

    return call


def _close_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass
