"""Run coroutines from synchronous magics on the kernel's event loop.

In ipykernel the loop is already running while a cell executes, so a
blocking magic re-enters it (nest-asyncio2 makes that safe) and background
work keeps running between cells. Where no loop runs (terminal IPython,
plain scripts) a private loop in a daemon thread plays that part.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nest_asyncio2

T = TypeVar("T")

_lock = threading.Lock()
_thread_loop: asyncio.AbstractEventLoop | None = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _thread_loop
    with _lock:
        if _thread_loop is None or _thread_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="claude-force-nb-loop", daemon=True).start()
            _thread_loop = loop
        return _thread_loop


def loop() -> asyncio.AbstractEventLoop:
    """The loop calls run on: the kernel's if one is running, else a private one."""
    return _running_loop() or _background_loop()


def run(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` on :func:`loop` and return its result."""
    running = _running_loop()
    if running is not None:
        nest_asyncio2.apply(running)
        return running.run_until_complete(awaitable)
    return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), _background_loop()).result()


def spawn(coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T] | concurrent.futures.Future[T]:
    """Start ``coroutine`` on :func:`loop` without waiting for it."""
    running = _running_loop()
    if running is not None:
        return running.create_task(coroutine)
    return asyncio.run_coroutine_threadsafe(coroutine, _background_loop())


def call_soon(callback: Callable[[], object]) -> None:
    """Run ``callback`` on :func:`loop` (safe from any thread)."""
    loop().call_soon_threadsafe(callback)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
