"""The memory tier: answers by key in a TTL- and size-bounded cache, with what a hit saves worked out once."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from cachetools import TTLCache

from .._request import Completion
from .rows import Row
from .stats import StatsCounter


class Hit(NamedTuple):
    """A cached answer and where it was found: "memory", "file" or "team"; ``cost`` is what it cost when made, as
    the cache worked it out for its stats (a 1-tuple, so that an unpriced model's None is told from unknown)."""

    completion: Completion
    source: str
    cost: tuple[float | None] | None = None


class Remembered(NamedTuple):
    """An answer in memory, with what a hit on it saves worked out once."""

    completion: Completion
    # None for answers stored here, which expire with the TTL; an answer
    # promoted from the file carries the wall-clock expiry it was signed
    # with, because the TTL restarts at promotion.
    deadline: float | None
    tokens: int
    cost: float | None  # None for a model without a price
    # As the file holds it: written into the file again should a damaged one be rebuilt.
    row: Row | None = None


class Memory(TTLCache):
    """cachetools' TTLCache of :class:`Remembered`, counting the entries it evicts to make room.

    (TLRUCache would expire per entry by itself, but its inserts cost about
    twice as much: a heap ordered by Python comparisons.)
    """

    def __init__(self, maxsize: int, ttl: float, timer: Callable[[], float], counter: StatsCounter):
        super().__init__(maxsize, ttl, timer)
        self._counter = counter

    def popitem(self) -> tuple[str, Remembered]:
        # cachetools calls popitem() only to make room, never to expire.
        item = super().popitem()
        self._counter.evictions += 1
        return item
