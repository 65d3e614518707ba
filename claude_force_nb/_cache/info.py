"""What ``%agent cache info`` reports: where the cache lives, how big it is, and the team database behind it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .store import Endpoint


@dataclass(frozen=True)
class CacheInfo:
    """Where the cache lives and how big it is; never the secret itself."""

    path: Path | None
    size_bytes: int
    entries: int
    memory_entries: int
    secret_source: str | None
    mode: str
    ttl_seconds: float | None
    maxsize: int
    endpoints: tuple[Endpoint, ...] = ()  # answers in the files by endpoint
    synthetic_path: Path | None = None  # where synthetic answers go, when not beside Claude's
    max_rows: int | None = None  # bounds of each file; None without one
    max_bytes: int | None = None
    team: TeamInfo | None = None  # the team database behind the file, when there is one


@dataclass(frozen=True)
class TeamInfo:
    """The team database: where (never its password), what it holds, and writes waiting for it."""

    where: str
    reachable: bool
    entries: int
    size_bytes: int
    queued: int  # waiting now
    dropped: int  # given up, past the queue's bound
