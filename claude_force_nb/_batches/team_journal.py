"""The Message Batches journal in the team database: a batch submitted on one machine is collected on any.

The same statements as the cache file's journal, on two tables of the team
database (made by its schema's migrations). Each operation is one transaction
on a pooled connection. While the database is away, operations fail at once
with :class:`~claude_force_nb.CacheError` (the journal's callers warn and go
on: the sweep that submitted a batch still collects it; only finding it again
after a restart is lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._cache.team import TeamStore
from .._cache.team_schema import BATCH_JOBS, BATCH_REQUESTS
from .._errors import CacheError
from .journal import BatchJournal, Connection, Named

TEAM_TABLES = {"jobs": BATCH_JOBS, "requests": BATCH_REQUESTS}


class TeamPlace:
    """The journal's place in a team database."""

    def __init__(self, team: TeamStore):
        import psycopg
        from psycopg_pool import PoolTimeout

        self._team = team
        self.where = f"the team cache at {team.where}"
        self.failures: tuple[type[BaseException], ...] = (psycopg.Error, PoolTimeout, CacheError)

    @contextmanager
    def transaction(self) -> Iterator[Named]:
        import psycopg

        if not self._team.available or not self._team.ensure_ready():
            raise CacheError(f"{self.where} is away")
        try:
            with self._team.connection() as conn, conn.transaction():
                yield Named(conn, TEAM_TABLES, marker="%s")
        except psycopg.OperationalError as exc:
            self._team.unreachable(exc)  # reads and the journal skip it until the writer finds it back
            raise

    def insert_job(self, conn: Connection, values: tuple) -> int:
        return int(
            conn.execute(
                "INSERT INTO {jobs} (batch_id, origin, created, size, state, owner) "
                "VALUES (NULL, ?, ?, ?, ?, ?) RETURNING job",
                values,
            ).fetchone()[0]
        )

    def close(self) -> None:
        """Nothing of its own: the connections are the team store's."""


def journals(path: Path, team: TeamStore | None, *, clock: Callable[[], float] = time.time) -> list[BatchJournal]:
    """Where Message Batches are written down, the one new batches go to first: the team database when there
    is one and it answers now, then the cache file (still read, for the batches it holds from before)."""
    file = BatchJournal(path, clock=clock)
    if team is not None and team.ensure_ready():
        return [BatchJournal(TeamPlace(team), clock=clock), file]
    return [file]
