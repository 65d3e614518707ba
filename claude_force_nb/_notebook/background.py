"""A sweep that runs while other cells do: a handle to watch, await or cancel it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Generator
from typing import Any

from .. import _checks as checks
from .._resultset import Rescorer, Results
from .._sweep import Batch, Progress
from . import loop as _loop

INTERRUPT_TICK = 0.1  # seconds


class BackgroundRun:
    """Handle on a ``%%agents --background`` sweep.

    The sweep runs on a worker event loop in its own thread, so its calls are
    sent and answered while the kernel's main thread computes in other cells.
    ``progress`` and ``results`` can be read at any time; ``wait()`` blocks
    the cell until the sweep ends; ``await run`` does the same in async code;
    ``cancel()`` stops what has not finished. Finished answers are cached as
    they arrive. Interrupting a cell that waits cancels the sweep, keeping
    what finished.
    """

    def __init__(
        self,
        batch: Batch,
        *,
        on_wait: Callable[[], object] | None = None,
        fmt: str = "markdown",
        engine: Rescorer | None = None,
    ):
        self.batch = batch
        self._fmt = fmt  # how its results' table shows answers
        self._engine = engine  # what its results are rescored with
        # Called in the cell that waits, so its output (a panel's final
        # state, say) is attributed to that cell and saved with the notebook.
        self._on_wait = on_wait
        self._loop = _loop.worker()
        release = _loop.sharing()
        try:
            self._future: concurrent.futures.Future = _loop.in_worker(batch.settle())
        except BaseException:
            release()
            raise
        self._future.add_done_callback(lambda _: release())

    @property
    def progress(self) -> Progress:
        return self.batch.progress

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def results(self) -> Results:
        """Results so far; unfinished calls appear as cancelled placeholders until they end."""
        return Results(self.batch.results_so_far(), fmt=self._fmt, engine=self._engine)

    def cancel(self) -> None:
        """Cancel the calls still queued or in flight."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.batch.cancel)

    def wait(self, timeout: float | None = None) -> Results:
        """Block until the sweep ends and return its results; TimeoutError after ``timeout`` seconds."""
        if timeout is not None:
            timeout = checks.seconds("timeout", timeout)
        try:
            # Through the kernel's loop, re-entered, so that the panel keeps updating meanwhile.
            _loop.run(asyncio.wait_for(self.settled(), timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"The sweep is still running after {timeout:g} s ({self.progress}); wait again, or read "
                ".results for what has finished."
            ) from None
        except KeyboardInterrupt:
            _loop.in_worker(self.batch.cancel_and_settle()).result()
            raise KeyboardInterrupt(self._interrupted()) from None
        self._waited()
        return self.results

    async def settled(self) -> None:
        """Wait, from any event loop, until the sweep has ended; cancelling this wait leaves the sweep alone."""
        ended = asyncio.wrap_future(self._future)
        while not ended.done():
            # ipykernel turns an interrupt into a callback queued on this loop without waking
            # it, and nothing else may wake it while the sweep runs on its own thread: a short
            # timeout lets the interrupt land within a tick rather than when the sweep ends.
            await asyncio.wait({ended}, timeout=INTERRUPT_TICK)
        ended.result()

    async def finished(self) -> Results:
        """Wait, from any event loop, until the sweep ends; return its results."""
        try:
            await self.settled()
        except asyncio.CancelledError:
            # The waiting cell was interrupted (ipykernel cancels an awaiting cell): stop the sweep,
            # as a blocking one would stop, and say what was kept.
            await asyncio.wrap_future(_loop.in_worker(self.batch.cancel_and_settle()))
            raise asyncio.CancelledError(self._interrupted()) from None
        self._waited()
        return self.results

    def _interrupted(self) -> str:
        progress = self.progress
        return (
            f"Interrupted: {progress.succeeded + progress.failed} calls finished (kept and cached), "
            f"{progress.cancelled} cancelled."
        )

    def _waited(self) -> None:
        if self._on_wait is not None:
            self._on_wait()

    def __await__(self) -> Generator[Any, None, Results]:
        return self.finished().__await__()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        state = "finished" if self.done else "running"
        text = f"Background sweep {state}: {self.progress}"
        if self.done:
            bundle = self.results._repr_mimebundle_()
            return {
                "text/plain": text + "\n" + bundle["text/plain"],
                "text/html": f"<p>{text}</p>" + bundle["text/html"],
            }
        return {"text/plain": text}

    def __repr__(self) -> str:
        return f"<BackgroundRun {'finished' if self.done else 'running'}: {self.progress}>"
