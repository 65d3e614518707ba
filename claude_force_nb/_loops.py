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
import weakref
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
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """The running loop's ``T``, made now if it has none."""
        loop = asyncio.get_running_loop()
        with self._lock:
            held = self._items.get(loop)
            if held is None:
                item = self._make()
                held = self._items[loop] = (item, self._closer(item))
        return held[0]

    def find(self) -> T | None:
        """The running loop's ``T``, if it has one."""
        held = self._items.get(asyncio.get_running_loop())
        return held[0] if held is not None else None

    def values(self) -> list[T]:
        with self._lock:
            return [item for item, _ in self._items.values()]

    async def aclose(self) -> list[asyncio.AbstractEventLoop]:
        """Close every loop's ``T`` on its loop; return the loops that could not (stopped, but not shut down)."""
        with self._lock:
            held, self._items = dict(self._items), weakref.WeakKeyDictionary()
        current = asyncio.get_running_loop()
        stranded = []
        for loop, (_, closer) in held.items():
            if loop is current:
                await closer.aclose()
            elif loop.is_running():  # a background sweep's worker, say
                closing = asyncio.run_coroutine_threadsafe(_aclose(closer), loop)
                await asyncio.wait([asyncio.wrap_future(closing)], timeout=CLOSE_TIMEOUT_SECONDS)
            elif not _finished(closer):
                # Stopped without asyncio.run's shutdown (run_until_complete, then close): nothing
                # can run on it any more, and its connections close when they are garbage-collected.
                stranded.append(loop)
        return stranded

    def _closer(self, item: T) -> AsyncGenerator[None, None]:
        closer = _close_at_shutdown(item, self._close)
        # Runs it to its yield now, on this loop: that registers it with the loop's shutdown.
        try:
            closer.asend(None).__await__().send(None)
        except StopIteration:
            pass
        return closer


async def _close_at_shutdown(item: T, close: Callable[[T], Awaitable[object]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close(item)


async def _aclose(closer: AsyncGenerator[None, None]) -> None:
    await closer.aclose()


def _finished(closer: AsyncGenerator[None, None]) -> bool:
    # A generator that has run its finally has no frame left.
    return getattr(closer, "ag_frame", None) is None
