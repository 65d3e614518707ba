"""A sweep that runs between cells: a handle to watch, await or cancel it."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from . import loop as _loop
from .._batch import Batch, Progress
from .resultset import Results


class BackgroundRun:
    """Handle on a ``%%agents --background`` sweep.

    ``progress`` and ``results`` can be read at any time; ``wait()`` blocks
    the cell until the sweep ends; ``await run`` does the same in async code;
    ``cancel()`` stops what has not finished. Finished answers are cached as
    they arrive.
    """

    def __init__(self, batch: Batch, *, on_wait: Callable[[], object] | None = None):
        self.batch = batch
        # Called in the cell that waits, so its output (a panel's final
        # state, say) is attributed to that cell and saved with the notebook.
        self._on_wait = on_wait
        self._future = _loop.spawn(batch.settle())

    @property
    def progress(self) -> Progress:
        return self.batch.progress

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def results(self) -> Results:
        """Results so far; unfinished calls appear as cancelled placeholders until they end."""
        return Results(self.batch.results_so_far())

    def cancel(self) -> None:
        """Cancel the calls still queued or in flight."""
        _loop.call_soon(self.batch.cancel)

    def wait(self) -> Results:
        """Block until the sweep ends and return its results."""
        _loop.run(self.batch.settle())
        self._waited()
        return self.results

    def _waited(self) -> None:
        if self._on_wait is not None:
            self._on_wait()

    def __await__(self) -> Generator[Any, None, Results]:
        async def finish() -> Results:
            await self.batch.settle()
            self._waited()
            return self.results

        return finish().__await__()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        state = "finished" if self.done else "running"
        text = f"Background sweep {state}: {self.progress}"
        if self.done:
            bundle = self.results._repr_mimebundle_()
            return {"text/plain": text + "\n" + bundle["text/plain"], "text/html": f"<p>{text}</p>" + bundle["text/html"]}
        return {"text/plain": text}

    def __repr__(self) -> str:
        return f"<BackgroundRun {'finished' if self.done else 'running'}: {self.progress}>"
