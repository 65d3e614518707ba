"""Many calls running concurrently, with results that fill in as they finish."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._results import AgentResult

if TYPE_CHECKING:
    from ._orchestrator import AsyncAgentOrchestrator


@dataclass(frozen=True)
class Slot:
    """What a batch tells the orchestrator about one of its calls."""

    semaphore: asyncio.Semaphore | None  # the batch's own concurrency limit, if any
    started: Callable[[], None]  # called once the call holds a slot


# Set inside each batch task, so execute_agent's signature stays the public one.
current_slot: contextvars.ContextVar[Slot | None] = contextvars.ContextVar("current_slot", default=None)


@dataclass(frozen=True)
class Call:
    """One call of a batch: an agent, its task, and per-call overrides."""

    agent: str
    task: str
    model: str | None = None
    item: Any = None
    options: dict[str, Any] = field(default_factory=dict)


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
        if self.running:
            parts.append(f"{self.running} in flight")
        return ", ".join(parts)


def as_calls(tasks: Iterable[Call | Sequence[Any]]) -> list[Call]:
    """Accept Call objects, ``(agent, task)`` or ``(agent, task, options)`` tuples."""
    calls = []
    for entry in tasks:
        if isinstance(entry, Call):
            calls.append(entry)
        elif len(entry) == 2:
            calls.append(Call(entry[0], entry[1]))
        elif len(entry) == 3 and isinstance(entry[2], dict):
            options = dict(entry[2])
            calls.append(Call(entry[0], entry[1], options.pop("model", None), options.pop("item", None), options))
        else:
            raise TypeError(f"Expected Call, (agent, task) or (agent, task, options); got {entry!r}.")
    return calls


class Batch:
    """Runs calls through an orchestrator; await it for results in input order."""

    def __init__(
        self,
        orchestrator: AsyncAgentOrchestrator,
        calls: Iterable[Call],
        *,
        on_update: Callable[[Batch], object] | None = None,
        concurrency: int | None = None,
        **options: Any,
    ):
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}.")
        self.calls = list(calls)
        for name in {c.agent for c in self.calls}:
            orchestrator.agents.get(name)  # unknown agents fail before any call is made
        self.results: list[AgentResult | None] = [None] * len(self.calls)
        self._running = [False] * len(self.calls)
        self._orchestrator = orchestrator
        self._options = options
        self._on_update = on_update
        self._concurrency = concurrency
        self._cancelled = False
        self._tasks: list[asyncio.Task] = []
        self._waiter: asyncio.Future | None = None

    def start(self) -> Batch:
        """Schedule every call on the running loop; returns at once."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            semaphore = asyncio.Semaphore(self._concurrency) if self._concurrency else None
            self._tasks = [loop.create_task(self._run(i, semaphore)) for i in range(len(self.calls))]
            self._waiter = asyncio.gather(*self._tasks, return_exceptions=True)
        return self

    async def _run(self, index: int, semaphore: asyncio.Semaphore | None) -> None:
        call = self.calls[index]
        current_slot.set(Slot(semaphore, lambda: self._mark_running(index)))
        options = {**self._options, **call.options}
        try:
            result = await self._orchestrator.execute_agent(
                call.agent, call.task, model=call.model, item=call.item, **options
            )
        except asyncio.CancelledError as exc:
            self._finish(index, AgentResult(call.agent, False, error=exc, model=call.model or "", task=call.task,
                                            item=call.item))
            raise
        except KeyboardInterrupt:
            self._finish(index, AgentResult(call.agent, False, error=asyncio.CancelledError("interrupted"),
                                            model=call.model or "", task=call.task, item=call.item))
            # Deliver the interrupt once, so the caller can cancel the batch;
            # when it resurfaces while the batch settles, it only marks this call.
            if not self._cancelled:
                raise
            return
        except Exception as exc:  # a bug in one call must not lose the others
            result = AgentResult(call.agent, False, error=exc, model=call.model or "", task=call.task, item=call.item)
        self._finish(index, result)

    def _mark_running(self, index: int) -> None:
        self._running[index] = True
        self._notify()

    def _finish(self, index: int, result: AgentResult) -> None:
        self._running[index] = False
        self.results[index] = result
        self._notify()

    def _notify(self) -> None:
        if self._on_update is not None:
            self._on_update(self)

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
        )

    def cancel(self) -> None:
        """Cancel every call still queued or in flight; finished results stay."""
        self._cancelled = True
        for task in self._tasks:
            task.cancel()

    async def wait(self) -> list[AgentResult]:
        """Results in input order. If this wait is cancelled, so are the calls."""
        self.start()
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
        out = []
        for call, result in zip(self.calls, self.results):
            if result is None:
                result = AgentResult(call.agent, False, error=asyncio.CancelledError(), model=call.model or "",
                                     task=call.task, item=call.item)
            out.append(result)
        return out

    def __await__(self) -> Generator[Any, None, list[AgentResult]]:
        return self.wait().__await__()

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"<Batch {self.progress}>"
