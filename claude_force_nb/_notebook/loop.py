"""Where the magics' coroutines run: the kernel's event loop, or a worker loop in its own thread.

In ipykernel the loop is already running while a cell executes, so a
blocking magic re-enters it (nest-asyncio2 makes that safe). Background
sweeps run on a worker loop in a daemon thread instead, which keeps turning
while a cell computes on the main thread; where no loop runs at all
(terminal IPython, plain scripts) blocking magics use that worker loop too.

A cell that computes holds the GIL, and the worker needs it for a moment at
every step of every call (each poll, send and receive lets go of it). CPython
makes a thread that asks wait up to its switch interval, 5 ms by default,
before the holder must let go, and a sweep asks hundreds of times: at 5 ms it
runs at a fraction of its speed beside a computing cell, slower still where
system calls are slow. While a background sweep runs, :func:`sharing` lowers
the interval to :data:`SWEEP_SWITCH_INTERVAL`; the cell loses nothing it would
not lose anyway, since a switch happens only when another thread asks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nest_asyncio2

T = TypeVar("T")

_lock = threading.Lock()
_worker: asyncio.AbstractEventLoop | None = None
# How long a computing cell may keep the GIL from a background sweep that asks for it.
SWEEP_SWITCH_INTERVAL = 0.001
_sharing = 0
_intervals: tuple[float, float] | None = None  # (the one found, the one set)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def worker() -> asyncio.AbstractEventLoop:
    """The worker loop, started in its daemon thread on first use."""
    global _worker
    with _lock:
        if _worker is None or _worker.is_closed():
            loop = asyncio.new_event_loop()
            # Daemon: a sweep still running never keeps a kernel from exiting. What it has
            # finished is already queued to the cache's writer, which the store's exit hook flushes.
            threading.Thread(target=_serve, args=(loop,), name="claude-force-nb-loop", daemon=True).start()
            _worker = loop
        return _worker


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    # An interrupt is for the main thread. Not every system prefers the main thread
    # when it delivers a signal to a process; delivered here, it would leave the main
    # thread asleep. Threads this one starts (the loop's executor) inherit the mask.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    loop.run_forever()


def run(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` on the running loop (re-entered), else on the worker loop, and return its result."""
    running = _running_loop()
    if running is not None:
        nest_asyncio2.apply(running)
        return running.run_until_complete(awaitable)
    future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), worker())
    try:
        return future.result()
    except KeyboardInterrupt:
        # The interrupt reached this thread, not the coroutine on the worker: stop that too.
        future.cancel()
        raise


def spawn(coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T] | concurrent.futures.Future[T]:
    """Start ``coroutine`` on the running loop, else on the worker loop, without waiting for it."""
    running = _running_loop()
    if running is not None:
        return running.create_task(coroutine)
    return asyncio.run_coroutine_threadsafe(coroutine, worker())


def in_worker(coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coroutine`` on the worker loop, whatever the calling thread is doing."""
    return asyncio.run_coroutine_threadsafe(coroutine, worker())


def on_this_loop(callback: Callable[[T], object]) -> Callable[[T], object]:
    """``callback``, called on the loop running now whichever thread calls the wrapper.

    Calls that arrive faster than that loop runs them are coalesced into one,
    with the latest argument: a widget then only ever changes on the thread
    that displays it. Where no loop runs, ``callback`` is called directly.
    """
    loop = _running_loop()
    if loop is None:
        return callback
    owner = threading.get_ident()
    state: dict[str, Any] = {"pending": False, "latest": None}

    def deliver() -> None:
        state["pending"] = False
        callback(state["latest"])

    def wrapper(arg: T) -> None:
        if threading.get_ident() == owner:
            callback(arg)
            return
        state["latest"] = arg
        if not state["pending"]:
            state["pending"] = True
            try:
                loop.call_soon_threadsafe(deliver)
            except RuntimeError:
                pass  # that loop has closed (the kernel is shutting down): nobody is watching

    return wrapper


def sharing() -> Callable[[], None]:
    """Lower the switch interval until the returned function is called; nested uses count."""
    global _sharing, _intervals
    with _lock:
        _sharing += 1
        if _sharing == 1:
            found = sys.getswitchinterval()
            sys.setswitchinterval(min(found, SWEEP_SWITCH_INTERVAL))
            _intervals = (found, sys.getswitchinterval())
    released = threading.Event()

    def release() -> None:
        global _sharing
        if released.is_set():
            return
        released.set()
        with _lock:
            _sharing -= 1
            # Someone else may have set their own interval meanwhile: theirs stays.
            if _sharing == 0 and _intervals is not None and sys.getswitchinterval() == _intervals[1]:
                sys.setswitchinterval(_intervals[0])

    return release


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
