"""Prompt caching: the prefixes requests mark with ``cache_control``, remembered per model for their TTL.

The first request with a prefix writes it (``cache_creation_input_tokens``);
a later one within the TTL, on the server clock, reads it
(``cache_read_input_tokens``) and refreshes the TTL. As on the API, a
breakpoint also finds a prefix cached at any of the 20 blocks before it, so a
conversation that moves its breakpoint forward reads what the previous turn
wrote. A prefix shorter than the model's minimum is not cached.
``input_tokens`` is what the cache neither read nor wrote, so input + written
+ read is the whole prompt, as count_tokens counts it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._models import DEFAULT_MINIMUM_CACHEABLE_TOKENS, MINIMUM_CACHEABLE_TOKENS
from . import _prompt

# The shortest prefix each model caches, in tokens: the client's table, so both sides agree.
MINIMUM_CACHEABLE = MINIMUM_CACHEABLE_TOKENS
DEFAULT_MINIMUM = DEFAULT_MINIMUM_CACHEABLE_TOKENS
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
LOOKBACK = 20
MAX_ENTRIES = 100_000


class CacheUsage(NamedTuple):
    """Tokens one request read from the cache and wrote to it, by TTL."""

    read: int = 0
    written_5m: int = 0
    written_1h: int = 0

    @property
    def written(self) -> int:
        return self.written_5m + self.written_1h


NOT_CACHED = CacheUsage()


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request would read and write; :meth:`PromptCache.commit` makes it so."""

    usage: CacheUsage
    total: int  # tokens of the whole prompt
    touch: tuple[tuple[bytes, float], ...] = ()  # prefixes to write or refresh, with their TTL in seconds


class PromptCache:
    """Cached prefixes by hash, each with its expiry on ``timer``; thread-safe."""

    def __init__(self, timer: Callable[[], float]):
        self._timer = timer
        self._entries: dict[bytes, tuple[float, float]] = {}  # key -> (expires, ttl seconds), oldest first
        self._lock = threading.Lock()

    def plan(self, body: Mapping[str, Any]) -> Plan:
        """What ``body`` (already validated) would read and write, leaving the cache as it is."""
        blocks = _prompt.blocks(body)
        total = _prompt.count(blocks)
        marks = [i for i, block in enumerate(blocks) if block.ttl is not None]
        if not marks:
            return Plan(NOT_CACHED, total)
        # Chained hashes: keys[i] names the prefix ending at block i, for this model only.
        keys, sizes = [], []
        digest, chars = hashlib.sha256(str(body["model"]).encode()).digest(), 0
        for block in blocks[: marks[-1] + 1]:
            digest = hashlib.sha256(digest + block.key).digest()
            chars += block.chars
            keys.append(digest)
            sizes.append(_prompt.tokens(chars))
        reachable = sorted({j for m in marks for j in range(max(0, m - LOOKBACK + 1), m + 1)}, reverse=True)
        now = self._timer()
        with self._lock:
            hit = next((j for j in reachable if self._live(keys[j], now)), None)
            touch = [(keys[hit], self._entries[keys[hit]][1])] if hit is not None else []
        read = sizes[hit] if hit is not None else 0
        written = {"5m": 0, "1h": 0}
        done, minimum = read, MINIMUM_CACHEABLE.get(body["model"], DEFAULT_MINIMUM)
        for m in marks:
            # A breakpoint below the minimum writes nothing; its tokens go with the next one that caches.
            if (hit is not None and m <= hit) or sizes[m] < minimum:
                continue
            ttl = blocks[m].ttl or "5m"
            written[ttl] += sizes[m] - done
            done = sizes[m]
            touch.append((keys[m], TTL_SECONDS[ttl]))
        return Plan(CacheUsage(read, written["5m"], written["1h"]), total, tuple(touch))

    def commit(self, plan: Plan) -> None:
        """Write and refresh the prefixes ``plan`` names, from now."""
        if not plan.touch:
            return
        now = self._timer()
        with self._lock:
            for key, ttl in plan.touch:
                self._entries.pop(key, None)  # re-inserted last, so the dict stays oldest-used first
                self._entries[key] = (now + ttl, ttl)
            if len(self._entries) > MAX_ENTRIES:
                self._prune(now)

    def use(self, body: Mapping[str, Any]) -> CacheUsage:
        """Plan and commit in one step."""
        plan = self.plan(body)
        self.commit(plan)
        return plan.usage

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        now = self._timer()
        with self._lock:
            return sum(1 for expires, _ in self._entries.values() if expires > now)

    def _live(self, key: bytes, now: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def _prune(self, now: float) -> None:
        # Expired entries first; if that is not enough, the least recently used half.
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}
        if len(self._entries) > MAX_ENTRIES:
            keep = list(self._entries.items())[len(self._entries) // 2 :]
            self._entries = dict(keep)
