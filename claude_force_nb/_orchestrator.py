"""Run agents concurrently: bounded, timed out, cached, in input order."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._agents import Agent, AgentRegistry
from ._backend import AnthropicBackend
from ._batch import Batch, Call, as_calls, current_slot
from ._cache import ResponseCache
from ._config import (
    DEFAULT_CACHE_MAXSIZE,
    DEFAULT_CACHE_TTL_HOURS,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    Settings,
)
from ._cache.database import CACHE_FILENAME, OFFLINE_CACHE_FILENAME
from ._errors import CallError, CallTimeoutError, ClaudeForceError
from ._pricing import DEFAULT_PRICES, estimate_cost
from ._request import Completion, Request
from ._results import AgentResult
from ._cache import CacheStats


class AsyncAgentOrchestrator:
    """Runs agents through the Messages API with a concurrency cap and a response cache.

    >>> orchestrator = AsyncAgentOrchestrator(max_concurrent=10, timeout_seconds=120)
    >>> result = await orchestrator.execute_agent("code-reviewer", "def f(): pass")
    """

    def __init__(
        self,
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        enable_cache: bool = True,
        cache_ttl_hours: float | None = None,
        cache_maxsize: int = DEFAULT_CACHE_MAXSIZE,
        cache_path: str | Path | None = None,
        cache_mode: str | None = None,
        model: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        api_key: str | None = None,
        base_url: str | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        agents: AgentRegistry | None = None,
        backend: AnthropicBackend | None = None,
        cache: ResponseCache | None = None,
        settings: Settings | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}.")
        settings = settings or Settings.from_env()
        self.settings = settings
        self.max_concurrent = max_concurrent
        self.timeout_seconds = timeout_seconds
        self.model = model or settings.model
        self.max_tokens = max_tokens
        self.prices = dict(prices) if prices is not None else dict(DEFAULT_PRICES)
        self.agents = agents or AgentRegistry(user_home=settings.user_home)
        self.backend = backend or AnthropicBackend(
            api_key=api_key, base_url=base_url, max_retries=max_retries, settings=settings
        )
        if cache is None and enable_cache:
            ttl_hours = DEFAULT_CACHE_TTL_HOURS if cache_ttl_hours is None else cache_ttl_hours
            if cache_path is None:
                name = OFFLINE_CACHE_FILENAME if self.backend.offline else CACHE_FILENAME
                cache_path = settings.home / name
            cache = ResponseCache(
                cache_path,
                settings=settings,
                ttl_seconds=ttl_hours * 3600,
                maxsize=cache_maxsize,
                mode=cache_mode or settings.cache_mode,
                price=self.estimate_cost,
            )
        self.cache = cache
        self._timer = timer
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def estimate_cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Estimated dollars for a call, from this orchestrator's price table."""
        return estimate_cost(model, input_tokens, output_tokens, self.prices)

    def build_request(
        self,
        agent: Agent,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: str | None = None,
        **params: Any,
    ) -> Request:
        """The request a call would send: per-call values over agent defaults over ours."""
        merged = {**agent.params, **{k: v for k, v in params.items() if v is not None}}
        return Request.for_task(
            task,
            model=model or agent.model or self.model,
            max_tokens=max_tokens or agent.max_tokens or self.max_tokens,
            system=system if system is not None else agent.system_prompt,
            **merged,
        )

    async def execute_agent(
        self,
        agent_name: str,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: str | None = None,
        cache_mode: str | None = None,
        timeout: float | None = None,
        on_text: Callable[[str], object] | None = None,
        item: Any = None,
        **params: Any,
    ) -> AgentResult:
        """Run one agent on one task. Failures come back as results, not exceptions.

        ``params`` (temperature, top_p, stop_sequences, tools...) override the
        agent's defaults; ``on_text`` streams the answer as it arrives.
        """
        start = self._timer()
        agent = self.agents.get(agent_name)
        request = self.build_request(agent, task, model=model, max_tokens=max_tokens, system=system, **params)

        async def call() -> Completion:
            return await self._call(request, timeout, on_text)

        try:
            if self.cache is not None:
                completion, source = await self.cache.fetch(request, call, mode=cache_mode, agent=agent.name)
            else:
                completion, source = await call(), "api"
        except ClaudeForceError as exc:
            return AgentResult(agent.name, False, error=exc, model=request.model, latency=self._timer() - start,
                               task=task, item=item)
        return self._result(agent.name, request, completion, source, start, task, item)

    def lookup(
        self,
        agent_name: str,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: str | None = None,
        cache_mode: str | None = None,
        item: Any = None,
        **params: Any,
    ) -> AgentResult | None:
        """The cached result of this call, found without awaiting anything; None if it would need the API.

        Takes the arguments of :meth:`execute_agent`. Lets synchronous callers
        (a re-run notebook cell) skip the event loop entirely on a hit.
        """
        mode = cache_mode or (self.cache.mode if self.cache is not None else "no-cache")
        if self.cache is None or mode in ("no-cache", "refresh"):
            return None
        start = self._timer()
        agent = self.agents.get(agent_name)
        request = self.build_request(agent, task, model=model, max_tokens=max_tokens, system=system, **params)
        found = self.cache.find(request, replay=mode == "replay")
        if found is None:
            return None
        return self._result(agent.name, request, found[0], found[1], start, task, item)

    def _result(self, agent_name: str, request: Request, completion: Completion, source: str, start: float,
                task: str, item: Any) -> AgentResult:
        message_model = completion.model or request.model
        cached = source != "api"
        return AgentResult(
            agent_name,
            True,
            output=completion.text,
            model=message_model,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            # A cached answer costs nothing now; the saving shows in stats().cost_saved.
            cost=0.0 if cached else self.estimate_cost(message_model, completion.input_tokens,
                                                       completion.output_tokens),
            # A live call's own time, not the wait for a concurrency slot before it.
            latency=completion.latency if source == "api" else self._timer() - start,
            original_latency=completion.latency,
            request_id=completion.request_id,
            cached=cached,
            source=source,
            task=task,
            item=item,
            completion=completion,
        )

    async def _call(self, request: Request, timeout: float | None, on_text: Callable[[str], object] | None) -> Completion:
        limit = self.timeout_seconds if timeout is None else timeout
        slot = current_slot.get()
        async with (slot.semaphore if slot and slot.semaphore else self._semaphore()):
            if slot is not None:
                slot.started()
            if on_text is not None:
                pending = self.backend.stream(request, on_text, timeout=limit)
            else:
                pending = self.backend.complete(request, timeout=limit)
            try:
                return await _deadline(pending, limit)
            except CallError:
                raise
            except asyncio.TimeoutError as exc:
                raise CallTimeoutError(
                    f"No answer within {limit:g} s; raise the timeout or try again later."
                ) from exc

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrent)
        return semaphore

    def batch(self, tasks: Iterable[Call | Sequence[Any]], *, on_update: Callable[[Batch], object] | None = None,
              concurrency: int | None = None, **options: Any) -> Batch:
        """A :class:`Batch` of calls, not yet started; ``await`` it or call ``start()``.

        ``concurrency`` replaces ``max_concurrent`` for this batch's calls.
        """
        return Batch(self, as_calls(tasks), on_update=on_update, concurrency=concurrency, **options)

    async def execute_multiple(self, tasks: Iterable[Call | Sequence[Any]], **options: Any) -> list[AgentResult]:
        """Run many ``(agent, task)`` calls concurrently; results in input order.

        A failed call never loses the others. Cancelling this coroutine
        cancels the calls still in flight.
        """
        return await self.batch(tasks, **options).wait()

    def stats(self) -> CacheStats:
        """A snapshot of the cache's statistics."""
        if self.cache is None:
            return CacheStats()
        return self.cache.stats()

    async def close(self) -> None:
        """Close HTTP connections and flush the cache file."""
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> AsyncAgentOrchestrator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _deadline(awaitable: Awaitable[Completion], seconds: float) -> Completion:
    """Await with a deadline; asyncio.timeout (3.11+) avoids wait_for's extra task per call."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)
