"""Cache statistics: a mutable counter and the frozen snapshot it produces."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TeamStatus:
    """The team database as the cache last found it, asking it nothing: where (never its password), whether
    it answered, and the writes waiting for it or given up."""

    where: str
    reachable: bool
    queued: int
    dropped: int


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What the response cache did since it was created or last reset.

    ``memory_hits``, ``file_hits`` and ``team_hits`` say where hits were
    found (the team database is read after the file). ``misses`` counts
    lookups that found nothing; ``shared`` of those joined an identical call
    already in flight instead of making their own, so ``calls`` (requests
    actually sent) can be lower than ``misses``.
    ``time_saved`` sums the original latencies of hits; ``tokens_saved`` and
    ``cost_saved`` also include shared calls, which cost nothing extra.
    ``unpriced`` counts the hits and shared calls among those whose model has
    no price, so they add nothing to ``cost_saved``. ``speedup`` is how long
    the answered requests would have taken without the cache divided by how
    long they took: (time saved + time in calls) / (time serving hits + time
    in calls). ``team`` is the team database's status, when there is one.
    """

    memory_hits: int = 0
    file_hits: int = 0
    team_hits: int = 0
    misses: int = 0
    hits: int = 0
    hit_rate: float = 0.0
    shared: int = 0
    calls: int = 0
    tampered: int = 0
    foreign: int = 0  # rows seen that another secret signed: kept, not served
    dropped: int = 0  # answers that could not be written to the file (still in memory)
    trimmed: int = 0  # rows removed from the file to keep it within its bounds
    evictions: int = 0
    time_saved: float = 0.0
    speedup: float = 1.0
    tokens_saved: int = 0
    cost_saved: float = 0.0
    unpriced: int = 0
    hit_time: float = 0.0
    call_time: float = 0.0
    team: TeamStatus | None = None


# What a file reports to the counter it was given.
_REPORTED = ("tampered", "foreign", "dropped", "trimmed")


class StatsCounter:
    """Running totals: the lookups' under the cache's lock, what the files report through :meth:`add`."""

    __slots__ = (
        "_lock",
        "call_time",
        "calls",
        "cost_saved",
        "dropped",
        "evictions",
        "file_hits",
        "foreign",
        "hit_time",
        "memory_hits",
        "misses",
        "shared",
        "tampered",
        "team_hits",
        "time_saved",
        "tokens_saved",
        "trimmed",
        "unpriced",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def add(self, name: str, count: int) -> None:
        """Count what a file reports from whichever thread saw it: tampered, foreign, dropped or trimmed rows."""
        if name not in _REPORTED:
            raise ValueError(f"Not a count a file reports: {name!r}.")
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def reset(self) -> None:
        self.memory_hits = self.file_hits = self.team_hits = self.misses = self.shared = 0
        self.calls = self.tampered = self.foreign = self.dropped = self.trimmed = self.evictions = 0
        self.unpriced = 0
        self.tokens_saved = 0
        self.time_saved = self.cost_saved = self.hit_time = self.call_time = 0.0

    def hit(self, latency: float, tokens: int, cost: float | None, elapsed: float) -> None:
        """Totals shared by every tier's hits; the caller counts which."""
        self.time_saved += latency
        self.hit_time += elapsed
        self._saved(tokens, cost)

    def count(self, tier: str) -> None:
        """One more hit from ``tier``: "file" or "team" (memory hits are counted where they are served)."""
        if tier == "team":
            self.team_hits += 1
        else:
            self.file_hits += 1

    def joined(self, tokens: int, cost: float | None) -> None:
        self.shared += 1
        self._saved(tokens, cost)

    def _saved(self, tokens: int, cost: float | None) -> None:
        self.tokens_saved += tokens
        if cost is None:
            self.unpriced += 1
        else:
            self.cost_saved += cost

    def called(self, elapsed: float) -> None:
        self.calls += 1
        self.call_time += elapsed

    def snapshot(self) -> CacheStats:
        hits = self.memory_hits + self.file_hits + self.team_hits
        lookups = hits + self.misses
        would_take = self.time_saved + self.call_time
        took = self.hit_time + self.call_time
        speedup = _speedup(would_take, took)
        return CacheStats(
            memory_hits=self.memory_hits,
            file_hits=self.file_hits,
            team_hits=self.team_hits,
            misses=self.misses,
            hits=hits,
            hit_rate=hits / lookups if lookups else 0.0,
            shared=self.shared,
            calls=self.calls,
            tampered=self.tampered,
            foreign=self.foreign,
            dropped=self.dropped,
            trimmed=self.trimmed,
            evictions=self.evictions,
            time_saved=self.time_saved,
            speedup=speedup,
            tokens_saved=self.tokens_saved,
            cost_saved=self.cost_saved,
            unpriced=self.unpriced,
            hit_time=self.hit_time,
            call_time=self.call_time,
        )


def _speedup(would_take: float, took: float) -> float:
    if took > 0:
        return would_take / took
    # Nothing measurable happened (or a fake timer never ticked).
    return math.inf if would_take > 0 else 1.0
