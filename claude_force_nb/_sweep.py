"""Many calls running concurrently, with results that fill in as they finish."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import _checks as checks
from ._call import PreparedCall
from ._results import AgentResult, failure


@dataclass(frozen=True)
class Slot:
    """What a batch hands each of its calls: its concurrency limit, and whom to tell once the call runs."""

    semaphore: asyncio.Semaphore | None  # the batch's own limit; None uses the runner's default
    started: Callable[[], None]  # called once the call holds a slot


# Runs one prepared call; a call's own failure comes back as a failed result.
Runner = Callable[[PreparedCall, Slot], Awaitable[AgentResult]]


@dataclass(frozen=True)
class Progress:
    """How far a batch has got."""

    total: int
    queued: int
    running: int
    succeeded: int
    cached: int
    failed: int
    cancelled: int
    incomplete: int = 0  # succeeded, but cut short: truncated, refused, tool use or paused

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0

    def __str__(self) -> str:
        parts = [f"{self.finished}/{self.total} done", f"{self.cached} cached", f"{self.failed} failed"]
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        if self.incomplete:
            parts.append(f"{self.incomplete} incomplete")
        if self.running:
            parts.append(f"{self.running} in flight")
        return ", ".join(parts)


class Batch:
    """Runs prepared calls through ``run``; await it for results in input order."""

    def __init__(
        self,
        calls: Sequence[PreparedCall],
        run: Runner,
        *,
        on_update: Callable[[Batch], object] | None = None,
        concurrency: int | None = None,
    ):
        if concurrency is not None:
            concurrency = checks.count("concurrency", concurrency, high=checks.MAX_CONCURRENCY)
        self.calls = list(calls)
        self.results: list[AgentResult | None] = [None] * len(self.calls)
        self._running = [False] * len(self.calls)
        self._run_call = run
        self.on_update = on_update  # called on every change; may be set until the batch starts
        self._concurrency = concurrency
        self.budget: Any = None  # what the batch may spend, when its maker gave it a budget (shown by the panel)
        self.remote: Any = None  # the Message Batches it waits for, when it runs through them (shown by the panel)
        self.scoring: Any = None  # what scores its answers, when it is an evaluation (counted by estimates)
        self._cancelled = False
        self._tasks: list[asyncio.Task] = []
        self._waiter: asyncio.Future | None = None

    def start(self) -> Batch:
        """Schedule every call on the running loop; returns at once."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            semaphore = asyncio.Semaphore(self._concurrency) if self._concurrency else None
            self._tasks = [loop.create_task(self._run(i, semaphore)) for i in range(len(self.calls))]
            for index, task in enumerate(self._tasks):
                task.add_done_callback(partial(self._ended, index))
                if self._cancelled:  # cancel() came first, from another thread's handle
                    task.cancel()
            self._waiter = asyncio.gather(*self._tasks, return_exceptions=True)
        return self

    async def _run(self, index: int, semaphore: asyncio.Semaphore | None) -> None:
        call = self.calls[index]
        try:
            result = await self._run_call(call, Slot(semaphore, partial(self._mark_running, index)))
        except asyncio.CancelledError as exc:
            self._finish(index, failure(call, exc))
            raise
        except KeyboardInterrupt:
            self._finish(index, failure(call, asyncio.CancelledError("interrupted")))
            # Deliver the interrupt once, so the caller can cancel the batch;
            # when it resurfaces while the batch settles, it only marks this call.
            if not self._cancelled:
                raise
            return
        except Exception as exc:  # a bug in one call must not lose the others
            result = failure(call, exc)
        self._finish(index, result)

    def _ended(self, index: int, task: asyncio.Task) -> None:
        # A task cancelled before its first step never enters _run's handlers.
        if self.results[index] is None:
            self._finish(index, failure(self.calls[index], asyncio.CancelledError()))

    def _mark_running(self, index: int) -> None:
        self._running[index] = True
        self.notify()

    def _finish(self, index: int, result: AgentResult) -> None:
        self._running[index] = False
        self.results[index] = result
        self.notify()

    def notify(self) -> None:
        """Tell ``on_update`` that something changed (its runner may call this too)."""
        if self.on_update is not None:
            self.on_update(self)

    @property
    def done(self) -> bool:
        return bool(self._tasks) and all(t.done() for t in self._tasks)

    @property
    def progress(self) -> Progress:
        finished = [r for r in self.results if r is not None]
        running = sum(self._running)
        return Progress(
            total=len(self.calls),
            queued=len(self.calls) - len(finished) - running,
            running=running,
            succeeded=sum(r.success for r in finished),
            cached=sum(r.cached for r in finished),
            failed=sum(not r.success and not r.cancelled for r in finished),
            cancelled=sum(r.cancelled for r in finished),
            incomplete=sum(r.success and not r.complete for r in finished),
        )

    def cancel(self) -> None:
        """Cancel every call still queued or in flight; finished results stay."""
        self._cancelled = True
        for task in self._tasks:
            task.cancel()

    async def wait(self) -> list[AgentResult]:
        """Results in input order. If this wait is cancelled, so are the calls."""
        self.start()
        assert self._waiter is not None  # start() made it
        try:
            await asyncio.shield(self._waiter)
        except asyncio.CancelledError:
            self.cancel()
            # Let every call record its cancellation before re-raising.
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise
        return self.results_so_far()

    async def cancel_and_settle(self) -> list[AgentResult]:
        """Cancel from the batch's own loop, then wait for every call to record how it ended."""
        self.cancel()
        return await self.settle()

    async def settle(self) -> list[AgentResult]:
        """Wait until every call has ended, finished or cancelled; never raises for them."""
        self.start()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.results_so_far()

    def results_so_far(self) -> list[AgentResult]:
        """Finished results, with unfinished calls shown as cancelled placeholders."""
        return [
            failure(call, asyncio.CancelledError()) if result is None else result
            for call, result in zip(self.calls, self.results, strict=True)
        ]

    def __await__(self) -> Generator[Any, None, list[AgentResult]]:
        return self.wait().__await__()

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"<Batch {self.progress}>"
