"""A time limit on code that may not return: the user's own (a snippet, a ``__repr__``), ended by an interrupt.

On the main thread (a kernel's, or a script's) a timer signal interrupts the
code, as the kernel's own interrupt does, so even a ``time.sleep`` ends; the
signal repeats until the code has stopped, and what it raises is a
``BaseException``, so a snippet's ``except Exception`` cannot swallow it.
Limits nest: an inner one never outlasts an outer one, and an outer one that
runs out inside an inner one ends both. Off the main thread the code runs on
a thread of its own, which is sent the exception when time is up and left
behind if it does not stop (C code that never returns to Python); callers
that change state there refuse to run (see :mod:`.snippets`). Either way the
caller gets :class:`TimeLimit`, and the kernel goes on.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
# How often the signal repeats once time is up, until the code has stopped.
REPEAT_SECONDS = 0.1
# setitimer refuses larger values; no limit is meant to be longer.
LONGEST = 10**6


class TimeLimit(Exception):
    """Code ran past its time limit and was interrupted."""

    def __init__(self, seconds: float = 0.0):
        super().__init__(f"interrupted after its time limit of {seconds:g} s")
        self.seconds = seconds


class _Expired(BaseException):
    """Raised into the code when its time is up: not an ``Exception``, so the code's handlers let it through."""

    def __init__(self, token: object = None):
        super().__init__("time limit")
        self.token = token


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def limited(function: Callable[[], T], seconds: float) -> T:
    """``function()``, interrupted with :class:`TimeLimit` after ``seconds``."""
    seconds = min(max(seconds, 0.001), LONGEST)
    if on_main_thread():
        return _on_main_thread(function, seconds)
    return _on_own_thread(function, seconds)


def _on_main_thread(function: Callable[[], T], seconds: float) -> T:
    token = object()
    stopped = False
    start = time.monotonic()
    previous_handler = signal.getsignal(signal.SIGALRM)
    if previous_handler is None:  # installed outside Python: put the default back
        previous_handler = signal.SIG_DFL
    outer, outer_repeat = signal.getitimer(signal.ITIMER_REAL)
    own = not outer or outer > seconds  # an outer limit due sooner keeps the timer, and ends both

    def expired(signum: int, frame: Any) -> None:
        if not stopped:  # a repeat that lands while the first one unwinds has nothing left to stop
            raise _Expired(token)

    try:
        if own:
            signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
        return function()
    except _Expired as exc:
        stopped = True
        if exc.token is not token:
            raise
        raise TimeLimit(seconds) from None
    finally:
        stopped = True
        if own:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            if outer:
                left = outer - (time.monotonic() - start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_repeat)


def _on_own_thread(function: Callable[[], T], seconds: float) -> T:
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="claude-force-nb-limited", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive() and worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_Expired))
        worker.join(0.5)
    if not outcome or isinstance(outcome[0][1], _Expired):
        raise TimeLimit(seconds)
    done, value = outcome[0]
    if done:
        return value
    raise value
