"""What belongs to one event loop (an SDK client's connections), kept per loop and closed on that loop.

An httpx connection pool can only be used, and closed, on the loop that
opened it. A script that calls ``asyncio.run`` several times on one
orchestrator opens a pool on each loop, and by the time it closes the
orchestrator those loops have ended. So each pool is closed as its loop
ends: ``asyncio.run`` (and ``asyncio.Runner``) shut down every async
generator started on a loop, on that loop, before closing it, and an async
generator parked at its ``yield`` is the one hook that gives a library. A
task would serve too, but it shows in ``asyncio.all_tasks()`` and is
reported as destroyed when a loop is closed by hand.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# How long closing waits for another thread's loop to close what is on it.
CLOSE_TIMEOUT_SECONDS = 5.0


class PerLoop(Generic[T]):
    """One ``T`` per event loop, made on first use there and closed on that loop."""

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[object]]):
        self._make = make
        self._close = close
        self._lock = threading.Lock()  # the kernel's loop and a background sweep's ask at once
        # A plain dict: each closer refers to its loop (through the loop's finalizer hook) and
        # leaves this dict as its loop shuts down, so nothing here outlives its loop for long.
        self._items: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = {}
        self._stranded: list[str] = []  # loops that stopped without shutting down, as named in a warning

    def get(self) -> T:
        """The running loop's ``T``, made now if it has none."""
        loop = asyncio.get_running_loop()
        with self._lock:
            held = self._items.get(loop)
            if held is None:
                self._let_go_of_closed_loops()
                item = self._make()
                held = self._items[loop] = (item, self._closer(loop, item))
        return held[0]

    def find(self) -> T | None:
        """The running loop's ``T``, if it has one."""
        held = self._items.get(asyncio.get_running_loop())
        return held[0] if held is not None else None

    def values(self) -> list[T]:
        with self._lock:
            return [item for item, _ in self._items.values()]

    async def aclose(self) -> list[str]:
        """Close every loop's ``T`` on its loop; return the loops that could not (stopped without shutting down)."""
        with self._lock:
            self._let_go_of_closed_loops()
            held, self._items = self._items, {}
            stranded, self._stranded = self._stranded, []
        current = asyncio.get_running_loop()
        for loop, (_, closer) in held.items():
            if loop is current:
                await closer.aclose()
            elif loop.is_running():  # a background sweep's worker, say
                closing = asyncio.run_coroutine_threadsafe(_aclose(closer), loop)
                await asyncio.wait([asyncio.wrap_future(closing)], timeout=CLOSE_TIMEOUT_SECONDS)
            elif not _finished(closer):
                stranded.append(_name(loop))  # stopped for now: nothing can run on it from here
        return stranded

    def _let_go_of_closed_loops(self) -> None:
        # Closed without asyncio.run's shutdown (run_until_complete, then close): nothing can run
        # on them any more. Their connections close when garbage-collected; close() names them.
        for loop in [loop for loop in self._items if loop.is_closed()]:
            _, closer = self._items.pop(loop)
            if not _finished(closer):
                self._stranded.append(_name(loop))

    def _forget(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._items.pop(loop, None)

    def _closer(self, loop: asyncio.AbstractEventLoop, item: T) -> AsyncGenerator[None, None]:
        closer = _close_at_shutdown(item, self._close, lambda: self._forget(loop))
        # Runs it to its yield now, on this loop: that registers it with the loop's shutdown.
        try:
            closer.asend(None).__await__().send(None)
        except StopIteration:
            pass
        return closer


async def _close_at_shutdown(
    item: T, close: Callable[[T], Awaitable[object]], forget: Callable[[], None]
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            await close(item)
        finally:
            forget()


async def _aclose(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()


def _finished(closer: AsyncGenerator[None, None]) -> bool:
    # A generator that has run its finally has no frame left.
    return getattr(closer, "ag_frame", None) is None


def _name(loop: asyncio.AbstractEventLoop) -> str:
    return f"{type(loop).__name__} at {id(loop):#x}"
