"""A time limit on code that may not return: the user's own (a snippet, a ``__repr__``), ended by an interrupt.

On the main thread (a kernel's, or a script's) a timer signal interrupts the
code, as the kernel's own interrupt does, so even a ``time.sleep`` ends. On
another thread the code runs on a thread of its own, which is sent an
exception when time is up and left behind if it does not stop (C code that
never returns to Python). Either way the caller gets :class:`TimeLimit`, and
the kernel goes on.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TimeLimit(Exception):
    """Code ran past its time limit and was interrupted."""

    def __init__(self, seconds: float = 0.0):  # raised in another thread by class, without arguments
        super().__init__(f"interrupted after its time limit of {seconds:g} s")
        self.seconds = seconds


def limited(function: Callable[[], T], seconds: float) -> T:
    """``function()``, interrupted with :class:`TimeLimit` after ``seconds``."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _on_main_thread(function, seconds)
    return _on_own_thread(function, seconds)


def _on_main_thread(function: Callable[[], T], seconds: float) -> T:
    def interrupt(signum: int, frame: Any) -> None:
        raise TimeLimit(seconds)

    previous = signal.signal(signal.SIGALRM, interrupt)
    # A limit already running (an outer call's) is put back, less the time spent here; an inner limit
    # never outlasts it.
    start = time.monotonic()
    earlier, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if earlier and earlier < seconds:
        signal.setitimer(signal.ITIMER_REAL, earlier)
        signal.signal(signal.SIGALRM, previous)
    try:
        return function()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if earlier:
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - start), 0.001))


def _on_own_thread(function: Callable[[], T], seconds: float) -> T:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="claude-force-nb-limited", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive() and worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(TimeLimit))
        worker.join(0.5)
    if not outcome or isinstance(outcome[0][1], TimeLimit):
        raise TimeLimit(seconds)
    done, value = outcome[0]
    if done:
        return value
    raise value
