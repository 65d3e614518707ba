"""The local cache file in front of a team database: what the cache reads and writes when it has both.

A read asks the file, then the database; what the database answers is copied
into the file, so the next read of it stays on this machine (and survives the
database going away). A write goes to both. Housekeeping (prune, clear,
verify) works on both; the file's answers are the ones counted first.
"""

from __future__ import annotations

from pathlib import Path

from .integrity import VerifyReport
from .rows import Row
from .secret import Signer
from .store import Endpoint, Store
from .team import TeamStore


class Tiers:
    """A :class:`Store` and a :class:`TeamStore`, used as one store."""

    def __init__(self, file: Store, team: TeamStore):
        self.file = file
        self.team = team

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def signer(self) -> Signer:
        return self.file.signer

    def get(self, key: str, origin: str, *, replay: bool = False, quiet: bool = False) -> Row | None:
        return self.find(key, origin, replay=replay, quiet=quiet)[0]

    def find(self, key: str, origin: str, *, replay: bool = False, quiet: bool = False) -> tuple[Row | None, bool]:
        """The row, as :meth:`get` finds it, and whether the database (not the file) had it."""
        row = self.file.get(key, origin, replay=replay, quiet=quiet)
        if row is not None:
            return row, False
        row = self.team.get(key, origin, replay=replay, quiet=quiet)
        if row is not None and not quiet and not replay:
            self.file.put(row)  # a replay leaves the (often committed) file as it found it
        return row, row is not None

    def put(self, row: Row) -> None:
        self.file.put(row)
        self.team.put(row)

    def flush(self) -> None:
        self.file.flush()
        self.team.flush()

    def clear(self) -> int:
        return self.file.clear() + self.team.clear()

    def prune(self) -> int:
        return self.file.prune() + self.team.prune()

    def verify(self) -> VerifyReport:
        mine, theirs = self.file.verify(), self.team.verify()
        return VerifyReport(
            mine.total + theirs.total,
            mine.ok + theirs.ok,
            mine.bad + theirs.bad,
            mine.expired + theirs.expired,
            mine.removed + theirs.removed,
            mine.foreign + theirs.foreign,
        )

    def count(self) -> int:
        return self.file.count()

    def size(self) -> int:
        return self.file.size()

    def endpoints(self) -> list[Endpoint]:
        return self.file.endpoints()

    @property
    def foreign_seen(self) -> bool:
        return self.file.foreign_seen

    def foreign_hint(self) -> str:
        return self.file.foreign_hint()

    def close(self) -> None:
        self.file.close()
        self.team.close()

    @property
    def closed(self) -> bool:
        return self.file.closed
