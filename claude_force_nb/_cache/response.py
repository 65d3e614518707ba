"""The response cache: memory in front of a signed SQLite file.

A lookup tries memory (a ``cachetools.TTLCache``), then the file that
every kernel on the machine shares; a file hit is promoted to memory. Answers
are filed under their request's key and the endpoint (``origin``) that gave
them, so an answer from one endpoint is never served for another. The
pipeline reads through :meth:`ResponseCache.lookup` alone, and stores with
:meth:`ResponseCache.store`. Modes, per call or as the default:

``normal``    serve from the cache, else call and store
``refresh``   call again and overwrite what is stored
``no-cache``  neither read nor write (and do not share calls: samples stay independent)
``replay``    serve only from the cache, however old the answer and whichever endpoint gave it;
              a miss fails the call with :class:`CacheMissError` (see ``miss_error``)
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from .. import _checks as checks
from .._config import (
    CACHE_MODES,
    DEFAULT_CACHE_MAXSIZE,
    DEFAULT_CACHE_TTL_HOURS,
    ENV_CACHE_URL,
    Settings,
    user_path,
)
from .._errors import CacheError, CacheMissError
from .._pricing import CostOf, Usage, cost_of
from .._request import Completion, Request
from .database import CACHE_FILENAME
from .fingerprint import fingerprint
from .info import CacheInfo, TeamInfo
from .integrity import VerifyReport
from .memory import Hit, Memory, Remembered
from .moving import Moved, move
from .rows import Row, summary
from .secret import load_signer
from .stats import CacheStats, StatsCounter, TeamStatus
from .store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS, Store
from .team import TeamStore
from .team_flight import Claim
from .tiers import Tiers

# Where an answer came from: this cache's tiers, an identical call in flight, or the API.
MEMORY, FILE, TEAM, SHARED, API = "memory", "file", "team", "shared", "api"


class ResponseCache:
    """Answers by request fingerprint: memory first, then the signed file."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        ttl_seconds: float | None = DEFAULT_CACHE_TTL_HOURS * 3600,
        maxsize: int = DEFAULT_CACHE_MAXSIZE,
        mode: str | None = None,
        secrets: Sequence[bytes | str] | None = None,
        persist: bool = True,
        settings: Settings | None = None,
        timer: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        price: CostOf = cost_of,
        synthetic_path: str | os.PathLike | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        team_url: str | None = None,
    ):
        maxsize = checks.count("maxsize", maxsize)
        settings = settings if settings is not None else Settings.from_env()
        self.mode = mode or settings.cache_mode
        # None means answers never expire (a recorded replay set, say).
        self.ttl_seconds = None if ttl_seconds is None else checks.seconds("ttl_seconds", ttl_seconds, infinite=True)
        self._ttl = math.inf if ttl_seconds is None else float(ttl_seconds)
        self.maxsize = maxsize
        self._timer = timer
        self._clock = clock
        self._price = price
        self._lock = threading.Lock()
        self._counter = StatsCounter()
        self._memory = Memory(maxsize, self._ttl, timer, self._counter)
        self._closed = False
        self._store: Store | Tiers | None = None
        # When set, a local server's synthetic answers go to this file, never to the one holding Claude's.
        self._synthetic_path = user_path(synthetic_path) if synthetic_path is not None and persist else None
        self._synthetic: Store | None = None
        self._max_rows = checks.count("max_rows", max_rows)
        self._max_bytes = checks.count("max_bytes", max_bytes, low=1 << 20)
        if persist:
            file = user_path(path) if path is not None else settings.home / CACHE_FILENAME
            # The secret file stays in the home directory even when the cache
            # file lives elsewhere (a recordings folder in a repository, say),
            # so it is not committed along with the answers.
            if secrets is not None:
                signer = load_signer(settings.home, secrets, source="argument")
            else:
                signer = load_signer(settings.home, settings.cache_secrets, source="env")
            self._open = partial(
                Store,
                signer=signer,
                clock=clock,
                counts=self._counter,
                on_rebuilt=self._rebuilt,
                max_rows=self._max_rows,
                max_bytes=self._max_bytes,
            )
            self._store = self._open(file)
            url = team_url if team_url is not None else settings.cache_url
            if url:
                team = TeamStore(
                    url, signer, clock=clock, timer=timer, counts=self._counter, max_rows=max_rows, max_bytes=max_bytes
                )
                self._store = Tiers(self._store, team)

    @property
    def mode(self) -> str:
        """The default mode for calls that do not name one."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = check_mode(value)

    @property
    def path(self) -> Path | None:
        return self._store.path if self._store is not None else None

    @property
    def team(self) -> TeamStore | None:
        """The team database behind the file, if there is one."""
        return self._store.team if isinstance(self._store, Tiers) else None

    def key(self, request: Request) -> str:
        """The fingerprint this cache files ``request`` under."""
        return fingerprint(request)

    # -- the hot path --------------------------------------------------------------------------------

    def lookup(
        self,
        key: str,
        origin: str = "",
        *,
        replay: bool = False,
        peek: bool = False,
        accept: Callable[[Completion], bool] | None = None,
    ) -> Hit | None:
        """The answer filed under ``key`` from ``origin`` and where it was (memory, file, then team), or None.

        Counts a hit or a miss, and promotes a file hit to memory, unless
        ``peek``. ``replay`` serves what was recorded however old, from any
        endpoint. An answer ``accept`` refuses is not served (a miss).
        """
        start = self._timer()
        found = self._find(key, origin, start, replay=replay, peek=peek, accept=accept)
        if found is None and not peek:
            with self._lock:
                self._counter.misses += 1
        return found

    def sent(self, elapsed: float) -> None:
        """Count a request that went to the API for want of an answer here, and the ``elapsed`` seconds it took."""
        with self._lock:
            self._counter.called(elapsed)

    def shared(self, completion: Completion, model: str) -> None:
        """Count a miss answered by an identical request already in flight: it cost nothing more."""
        entry = self._entry(completion, model)
        with self._lock:
            self._counter.joined(entry.tokens, entry.cost)

    def store(
        self,
        request: Request,
        completion: Completion,
        *,
        agent: str = "",
        key: str | None = None,
        origin: str | None = None,
    ) -> None:
        """Remember ``completion`` as the answer to ``request`` (memory now, file soon).

        ``origin`` defaults to the completion's own; a synthetic answer stays
        out of a file that holds Claude's answers (in memory only).
        """
        if key is None:
            key = fingerprint(request)
        if origin is None:
            origin = completion.origin
        entry = self._entry(completion, request.model)
        if self._closed or self._store is None:  # memory only: no file to write it to, now or after a rebuild
            with self._lock:
                self._memory[(origin, key)] = entry
            return
        created = self._clock()
        row = Row(
            key,
            completion if completion.origin == origin else replace(completion, origin=origin),
            created,
            created + self._ttl,
            agent,
            completion.model or request.model,
            summary(request.task),  # all the file keeps of it; memory need hold no more
        )
        with self._lock:
            self._memory[(origin, key)] = entry._replace(row=row)
        target = self._synthetic_store(create=True) if completion.synthetic else None
        (target or self._store).put(row)

    def _find(
        self,
        key: str,
        origin: str,
        start: float,
        *,
        replay: bool,
        peek: bool,
        accept: Callable[[Completion], bool] | None,
    ) -> Hit | None:
        slot = (origin, key)
        with self._lock:
            entry = self._memory.get(slot)
            if entry is not None and entry.deadline is not None and entry.deadline <= self._clock():
                if not peek:
                    del self._memory[slot]  # promoted, and past its signed expiry
                entry = None
            if entry is not None and accept is None:  # the hot path: one lock, taken once
                return self._memory_hit(entry, start, peek)
        if entry is not None:
            # Asked outside the lock: it may read the kernel (--context), and other lookups must not wait.
            if accept is not None and not accept(entry.completion):
                return None
            with self._lock:
                return self._memory_hit(entry, start, peek)
        if self._store is None:
            return None
        # Replay serves what was recorded however old it is, from whichever endpoint,
        # and leaves the (often committed) file as it found it.
        if isinstance(self._store, Tiers):
            row, tier = self._store.find(key, origin, replay=replay, quiet=peek)
            source = TEAM if tier else FILE
        else:
            row, source = self._store.get(key, origin, replay=replay, quiet=peek), FILE
        if row is None:
            synthetic = self._synthetic_store(create=False)
            row = synthetic.get(key, origin, replay=replay, quiet=peek) if synthetic is not None else None
        if row is None or (accept is not None and not accept(row.completion)):
            return None
        if peek:
            return Hit(row.completion, source)
        completion = row.completion
        usage = Usage.of(completion.message.get("usage"))
        cost = self._price(row.model, usage)
        if replay and (row.expires <= self._clock() or completion.origin != origin):
            with self._lock:
                self._counter.count(source)
                self._counter.hit(completion.latency, usage.prompt + usage.output, cost, self._timer() - start)
            return Hit(completion, source, (cost,))
        deadline = row.expires if row.expires < self._clock() + self._ttl else None
        entry = Remembered(completion, deadline, usage.prompt + usage.output, cost, row)
        with self._lock:
            self._memory[slot] = entry
            counter = self._counter
            counter.count(source)
            counter.hit(completion.latency, entry.tokens, entry.cost, self._timer() - start)
        return Hit(completion, source, (cost,))

    def _memory_hit(self, entry: Remembered, start: float, peek: bool) -> Hit:
        """A hit from memory, counted unless ``peek``; the caller holds the lock."""
        if not peek:
            self._counter.memory_hits += 1
            self._counter.hit(entry.completion.latency, entry.tokens, entry.cost, self._timer() - start)
        return Hit(entry.completion, MEMORY, (entry.cost,))

    def _rebuilt(self, store: Store) -> None:
        """A damaged file was replaced: what this session served or stored goes into the fresh one."""
        now = self._clock()
        with self._lock:
            rows = [entry.row for entry in self._memory.values() if entry.row is not None]
        for row in rows:
            # Filed as store() files it: synthetic answers in their own file, where there is one.
            home = self._synthetic if row.completion.synthetic and self._synthetic_path is not None else self._store
            if home is store and row.expires > now:
                store.put(row)

    def _synthetic_store(self, *, create: bool) -> Store | None:
        """The file for synthetic answers: opened when it exists, made on the first such answer."""
        path = self._synthetic_path
        if self._synthetic is None and path is not None and not self._closed and (create or path.exists()):
            with self._lock:
                if self._synthetic is None:
                    self._synthetic = self._open(path)
        return self._synthetic

    def _stores(self, *, opening: bool = True) -> list[Store | Tiers]:
        """The open files, the main one first; ``opening`` also opens an existing synthetic file."""
        if opening:
            self._synthetic_store(create=False)
        return [store for store in (self._store, self._synthetic) if store is not None]

    def _entry(self, completion: Completion, model: str) -> Remembered:
        # Tokens and cost are worked out once here, so a hit only adds numbers.
        usage = Usage.of(completion.message.get("usage"))
        return Remembered(completion, None, usage.prompt + usage.output, self._price(completion.model or model, usage))

    def miss_error(self, request: Request, agent: str = "") -> CacheMissError:
        """The error for a replay that found no answer to ``request``: what to do about it, in one line."""
        task = " ".join(request.task[:200].split())
        task = task if len(task) <= 60 else task[:57] + "..."
        who = f"agent {agent!r}" if agent else "this request"
        message = (
            f"No cached answer for {who} on {task!r} (replay mode only serves recorded answers). "
            "Record it by running once without replay (cache mode 'normal'), then replay."
        )
        if self._store is None:
            message += " This cache is in memory only (persist=False), so nothing survives a restart."
        else:
            foreign = [store for store in self._stores(opening=False) if store.foreign_seen]
            if foreign:
                message += " " + foreign[0].foreign_hint()
        return CacheMissError(message)

    # -- management ----------------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """A snapshot of what the cache has done since it was made or reset."""
        with self._lock:
            stats = self._counter.snapshot()
        team = self.team
        if team is None:
            return stats
        return replace(stats, team=TeamStatus(team.where, team.available, team.pending, team.dropped))

    def reset_stats(self) -> None:
        with self._lock:
            self._counter.reset()

    def flush(self) -> None:
        """Wait until answers stored so far are in the file."""
        for store in self._stores(opening=False):
            store.flush()

    def clear(self) -> int:
        """Forget every answer, in memory and in the file; return how many the file held."""
        self._check_open()
        with self._lock:
            in_memory = len(self._memory)
            self._memory.clear()
        stores = self._stores()
        return sum(store.clear() for store in stores) if stores else in_memory

    def prune(self) -> int:
        """Drop expired answers now; return how many rows left the file (or memory, if memory only)."""
        self._check_open()
        with self._lock:
            expired = len(self._memory.expire())
        stores = self._stores()
        if not stores:
            return expired
        self.flush()
        return sum(store.prune() for store in stores)

    def verify(self) -> VerifyReport:
        """Check every stored signature: remove tampered and expired rows, keep those of another secret."""
        self._check_open()
        if self._store is None:
            with self._lock:
                entries = len(self._memory)
            return VerifyReport(entries, entries, (), (), 0)
        reports = [store.verify() for store in self._stores()]
        return VerifyReport(
            sum(r.total for r in reports),
            sum(r.ok for r in reports),
            tuple(key for r in reports for key in r.bad),
            tuple(key for r in reports for key in r.expired),
            sum(r.removed for r in reports),
            sum(r.foreign for r in reports),
        )

    async def claim(self, key: str, origin: str, lease: float) -> Claim | None:
        """Hold ``key`` from ``origin`` across machines while it is sent, or wait for another kernel's answer
        (in ``claim.row``); None without a team database (see :mod:`.team_flight`)."""
        if not isinstance(self._store, Tiers) or self._closed:
            return None
        return await self._store.team.flights.claim(key, origin, lease)

    def release(self, claim: Claim) -> None:
        """End a claim from :meth:`claim` once its answer (if any) is stored."""
        if isinstance(self._store, Tiers):
            self._store.team.flights.release(claim)

    def push(self) -> Moved:
        """Copy the file's answers to the team database, checked on the way (see :mod:`.moving`)."""
        tiers = self._tiers()
        tiers.file.flush()
        return move(tiers.file, tiers.team, tiers.signer, self._clock)

    def pull(self) -> Moved:
        """Copy the team database's answers into the file, checked on the way: for a laptop going offline,
        or a CI job that should replay from a snapshot."""
        tiers = self._tiers()
        return move(tiers.team, tiers.file, tiers.signer, self._clock)

    def _tiers(self) -> Tiers:
        self._check_open()
        if not isinstance(self._store, Tiers):
            raise CacheError(
                f"No team cache to move answers to or from: set {ENV_CACHE_URL} "
                "(or %config AgentMagics.cache_url, or cache_url=) to a postgresql:// URL."
            )
        return self._store

    def info(self) -> CacheInfo:
        """Path, size, entry counts and where the secret comes from."""
        self._check_open()
        with self._lock:
            memory_entries = len(self._memory)
        stores = self._stores()
        for store in stores:
            store.flush()
        return CacheInfo(
            path=self._store.path if self._store else None,
            size_bytes=sum(store.size() for store in stores),
            entries=sum(store.count() for store in stores) if stores else memory_entries,
            memory_entries=memory_entries,
            secret_source=self._store.signer.source if self._store else None,
            mode=self._mode,
            ttl_seconds=self.ttl_seconds,
            maxsize=self.maxsize,
            endpoints=tuple(e for store in stores for e in store.endpoints()),
            synthetic_path=self._synthetic_path,
            max_rows=self._max_rows if self._store else None,
            max_bytes=self._max_bytes if self._store else None,
            team=self._team_info(),
        )

    def _team_info(self) -> TeamInfo | None:
        if not isinstance(self._store, Tiers):
            return None
        team = self._store.team
        entries = team.count()  # asks the database, so says whether it is reachable
        return TeamInfo(team.where, team.available, entries, team.size(), team.pending, team.dropped)

    def close(self) -> None:
        """Write out pending answers and close the files. Memory lookups keep working."""
        self._closed = True
        for store in self._stores(opening=False):
            store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise CacheError("The response cache is closed; create a new ResponseCache to use it again.")

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self._store is not None else "memory only"
        return f"ResponseCache({where!r}, mode={self._mode!r})"


def check_mode(mode: str) -> str:
    if mode not in CACHE_MODES:
        raise ValueError(f"Unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}.")
    return mode
