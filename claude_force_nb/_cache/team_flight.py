"""Single-flight across machines: identical requests in flight in several kernels make one call between them.

Design: a lease row per request in flight, and PostgreSQL's notifications.

- A kernel about to send a request claims it: one ``INSERT … ON CONFLICT``
  makes it the holder, unless another kernel holds a claim whose lease has
  not run out. The lease is the call's own deadline plus a margin, so it
  bounds how long anyone waits.
- The holder sends, and its answer goes into the table through the write
  queue; the same transaction that writes it ends the claim and notifies
  (``NOTIFY``) every kernel listening. A call that fails ends its claim too,
  and the waiters then claim it themselves: one of them sends.
- A waiter waits for that notification, reading the table at least every
  :data:`POLL_SECONDS`. Each kernel holds a session advisory lock named
  after itself on its listening connection, which PostgreSQL lets go the
  moment that kernel's connection dies: a waiter that can take the holder's
  lock knows the holder is gone and takes its claim over at once, without
  waiting out the lease.

When the database is away, claims are not made: each kernel sends its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .rows import Row
from .team_schema import FLIGHTS

CHANNEL = "claude_force_nb_flights"
POLL_SECONDS = 1.0
CONNECT_SECONDS = 3.0

_CLAIM = (
    f"INSERT INTO {FLIGHTS} (key, origin, holder, expires) VALUES (%s, %s, %s, %s) "
    f"ON CONFLICT (key, origin) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires "
    f"WHERE {FLIGHTS}.expires < %s OR {FLIGHTS}.holder = EXCLUDED.holder RETURNING holder"
)
_HOLDER = f"SELECT holder FROM {FLIGHTS} WHERE key = %s AND origin = %s"
_TAKE_OVER = f"UPDATE {FLIGHTS} SET holder = %s, expires = %s WHERE key = %s AND origin = %s AND holder = %s"
_END = f"DELETE FROM {FLIGHTS} WHERE key = %s AND origin = %s AND holder = %s"


class Store(Protocol):
    """What claims need of the team store: its rows, its connections, and its write queue."""

    @property
    def url(self) -> str: ...
    @property
    def available(self) -> bool: ...
    def get(
        self, key: str, origin: str, *, replay: bool = False, quiet: bool = False, conn: Any = None
    ) -> Row | None: ...
    def connection(self) -> AbstractContextManager[Any]: ...
    def ensure_ready(self) -> bool: ...
    def enqueue(self, release: Release) -> None: ...


@dataclass(frozen=True)
class Release:
    """A claim to end, queued behind its answer so the answer is in the table when the waiters wake."""

    key: str
    origin: str
    holder: str


@dataclass
class Claim:
    """The outcome of :meth:`TeamFlights.claim`: this kernel sends (``held``), or another's answer (``row``)."""

    held: bool
    row: Row | None = None
    key: str = ""
    origin: str = ""
    released: bool = field(default=False, repr=False)


class TeamFlights:
    """Claims on requests in flight, for one team store; listens for their ends on a thread."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time):
        self._store = store
        self._clock = clock
        self.holder = uuid.uuid4().hex  # this kernel, as other kernels see it
        self._lock = threading.Lock()
        self._waiters: dict[tuple[str, str], list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="claude-force-nb-team-listener", daemon=True)
        self._thread.start()

    async def claim(self, key: str, origin: str, lease: float) -> Claim:
        """Hold ``key`` from ``origin`` for ``lease`` seconds, or wait for whoever holds it; see the module.

        Nobody waits longer than a lease: past it, this kernel sends alone.
        """
        deadline = self._clock() + lease
        while self._clock() < deadline:
            attempt = asyncio.ensure_future(asyncio.to_thread(self._try, key, origin, lease))
            try:
                outcome = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The attempt runs on in its thread: a claim it makes after all is ended, not left to expire.
                attempt.add_done_callback(self._release_late)
                raise
            if outcome is not None:
                return outcome
            await self._wait(key, origin)
        return Claim(True, key=key, origin=origin, released=True)

    def _release_late(self, attempt: asyncio.Future[Claim | None]) -> None:
        if not attempt.cancelled() and attempt.exception() is None:
            outcome = attempt.result()
            if outcome is not None:
                self.release(outcome)

    def release(self, claim: Claim) -> None:
        """End a held claim once what was stored before it is written (its answer, if it has one)."""
        if claim.held and not claim.released:
            claim.released = True
            self._store.enqueue(Release(claim.key, claim.origin, self.holder))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2 * POLL_SECONDS)

    # -- one attempt ---------------------------------------------------------------------------------

    def _try(self, key: str, origin: str, lease: float) -> Claim | None:
        """A claim held, the answer another kernel stored, or None: someone alive holds it; wait."""
        from psycopg_pool import PoolTimeout

        # The listener starts with the first claim: give it the time a connection takes, unless the database is away.
        if not self._listening.wait(CONNECT_SECONDS if self._store.available else 0):
            return Claim(True, key=key, origin=origin, released=True)  # no database: send alone, nothing to end
        now = self._clock()
        try:
            with self._store.connection() as conn:
                row = self._store.get(key, origin, quiet=True, conn=conn)
                if row is not None:
                    return Claim(False, row)
                if conn.execute(_CLAIM, (key, origin, self.holder, now + lease, now)).fetchone() is not None:
                    # Held; unless its answer landed between the read above and the claim.
                    row = self._store.get(key, origin, quiet=True, conn=conn)
                    if row is not None:
                        conn.execute(_END, (key, origin, self.holder))
                        return Claim(False, row)
                    return Claim(True, key=key, origin=origin)
                found = conn.execute(_HOLDER, (key, origin)).fetchone()
                if found is not None and not _alive(conn, found[0]):
                    taken = conn.execute(_TAKE_OVER, (self.holder, now + lease, key, origin, found[0])).rowcount
                    if taken:
                        return Claim(True, key=key, origin=origin)
        except PoolTimeout:
            if not self._store.available:
                return Claim(True, key=key, origin=origin, released=True)  # away after all: send alone
            return None  # every connection busy: try again after a wait
        except Exception:  # the database went away mid-claim: send alone
            return Claim(True, key=key, origin=origin, released=True)
        return None

    async def _wait(self, key: str, origin: str) -> None:
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiters.setdefault((key, origin), []).append((loop, woken))
        try:
            await asyncio.wait_for(woken, POLL_SECONDS)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                waiting = self._waiters.get((key, origin), [])
                if (loop, woken) in waiting:
                    waiting.remove((loop, woken))
                if not waiting:
                    self._waiters.pop((key, origin), None)

    # -- the listener --------------------------------------------------------------------------------

    def _listen(self) -> None:
        """Hold this kernel's liveness lock and pass on the notifications that claims ended, reconnecting."""
        import psycopg

        pause = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._store.url, autocommit=True, connect_timeout=3) as conn:
                    if not self._store.ensure_ready():
                        raise ConnectionError("the team cache is away or refused")
                    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (self.holder,))
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    pause = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=POLL_SECONDS, stop_after=100):
                            self._wake(note.payload)
            except Exception:
                self._listening.clear()
                if self._stop.wait(pause):
                    return
                pause = min(pause * 2, 30.0)

    def _wake(self, payload: str) -> None:
        origin, _, key = payload.partition("\t")
        with self._lock:
            waiting = self._waiters.pop((key, origin), [])
        for loop, woken in waiting:
            loop.call_soon_threadsafe(_settle, woken)


def notice(release: Release) -> str:
    """The notification that ends ``release``'s claim."""
    return f"{release.origin}\t{release.key}"


def _alive(conn: Any, holder: str) -> bool:
    """Whether the kernel ``holder`` still holds its liveness lock (its connection is open)."""
    got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (holder,)).fetchone()[0]
    if got:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (holder,))
    return not got


def _settle(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
