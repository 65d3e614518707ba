"""Run agents concurrently: bounded, timed out, cached, in input order."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from . import _checks as checks
from ._agents import Agent, AgentRegistry
from ._api.backend import AnthropicBackend, Backend
from ._api.pacing import Pace
from ._batches.journal import BatchJournal, Job
from ._batches.remote import BatchStatus
from ._batches.runner import DEFAULT_POLL_SECONDS, UNKEYED, BatchRunner, collect_open
from ._cache import API, CACHE_FILENAME, OFFLINE_CACHE_FILENAME, SHARED, CacheStats, ResponseCache, check_mode
from ._cache.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from ._call import Call, PreparedCall, as_calls
from ._config import (
    DEFAULT_CACHE_MAXSIZE,
    DEFAULT_CACHE_TTL_HOURS,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_MODEL,
    Settings,
)
from ._conversation import Conversation
from ._errors import AgentNotFoundError, BudgetExceededError, ModelNotFoundError
from ._estimate import Estimate, estimate
from ._models import resolve_model
from ._offline import local_endpoint
from ._pricing import DEFAULT_PRICES, PriceEntry, Usage, cost_of, estimate_cost
from ._prompt_cache import Turn
from ._prompt_cache import plan as plan_prompt_cache
from ._request import Completion, Request
from ._results import AgentResult, failure
from ._schema import SchemaError, output_format
from ._schema import parse as parse_answer
from ._spend import Budget, Ledger, Spend
from ._sweep import Batch, Slot
from ._tools import DEFAULT_MAX_TURNS, definitions, runnable


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
        cache_max_rows: int = DEFAULT_MAX_ROWS,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        model: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        api_key: str | None = None,
        base_url: str | None = None,
        prices: Mapping[str, PriceEntry] | None = None,
        agents: AgentRegistry | None = None,
        backend: Backend | None = None,
        cache: ResponseCache | None = None,
        settings: Settings | None = None,
        timer: Callable[[], float] = time.perf_counter,
        pace: bool = True,
        prompt_caching: bool = True,
    ):
        settings = settings or Settings.from_env()
        self.settings = settings
        self.max_concurrent = checks.count("max_concurrent", max_concurrent, high=checks.MAX_CONCURRENCY)
        self.timeout_seconds = checks.seconds("timeout_seconds", timeout_seconds)
        self.model = self._default_model(model, settings)
        self.max_tokens = checks.count("max_tokens", max_tokens)
        max_retries = checks.count("max_retries", max_retries, low=0, high=100)
        self.prices = dict(prices) if prices is not None else dict(DEFAULT_PRICES)
        self.agents = agents or AgentRegistry(user_home=settings.user_home)
        self.backend: Backend = backend or AnthropicBackend(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            settings=settings,
            pace=pace,
            offline_endpoint=partial(local_endpoint, settings.simulator_latency),
        )
        if cache is None and enable_cache:
            ttl_hours = DEFAULT_CACHE_TTL_HOURS if cache_ttl_hours is None else cache_ttl_hours
            ttl_hours = checks.seconds("cache_ttl_hours", ttl_hours, infinite=True)
            # The file that holds Claude's answers never takes a local server's synthetic ones: those
            # (offline, or from ANTHROPIC_BASE_URL pointing at such a server) go to the offline file
            # beside it. Both are read, whoever asks: outside replay an answer is only served to its
            # own endpoint anyway, and replay (CI without a key, say) then finds recordings in either.
            # A file the caller names takes both kinds, each row saying which it holds.
            synthetic_path = None
            if cache_path is None:
                cache_path = settings.home / CACHE_FILENAME
                synthetic_path = settings.home / OFFLINE_CACHE_FILENAME
            cache = ResponseCache(
                cache_path,
                settings=settings,
                ttl_seconds=ttl_hours * 3600,
                maxsize=cache_maxsize,
                mode=cache_mode or settings.cache_mode,
                price=self.cost_of,
                synthetic_path=synthetic_path,
                max_rows=cache_max_rows,
                max_bytes=cache_max_bytes,
            )
        self.cache = cache
        self.prompt_caching = prompt_caching
        self._journal: BatchJournal | None = None
        self.ledger = Ledger()
        # Output tokens of this session's answers by (agent, model): (answers, tokens), for estimates.
        self._outputs: dict[tuple[str, str], tuple[int, int]] = {}
        self._outputs_lock = threading.Lock()
        self._timer = timer
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def estimate_cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """Estimated dollars for a call, from this orchestrator's price table; None without a price."""
        return estimate_cost(model, input_tokens, output_tokens, self.prices)

    def cost_of(self, model: str, usage: Usage) -> float | None:
        """Estimated dollars for an answer's usage (prompt cache and batch rates included); None without a price."""
        return cost_of(model, usage, self.prices)

    def build_request(
        self,
        agent: Agent,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: str | None = None,
        history: Sequence[dict[str, Any]] = (),
        attachments: Sequence[dict[str, Any]] = (),
        **params: Any,
    ) -> Request:
        """The request a call would send: per-call values over agent defaults over ours, after ``history``."""
        merged = {**agent.params, **{k: v for k, v in params.items() if v is not None}}
        return Request.for_task(
            task,
            model=resolve_model(model) if model else agent.model or self.model,
            max_tokens=max_tokens or agent.max_tokens or self.max_tokens,
            system=system if system is not None else agent.system_prompt,
            history=history,
            attachments=attachments,
            **merged,
        )

    def prepare(
        self,
        agent_name: str,
        task: str,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: str | None = None,
        cache_mode: str | None = None,
        timeout: float | None = None,
        item: Any = None,
        history: Sequence[dict[str, Any]] = (),
        attachments: Sequence[dict[str, Any]] = (),
        schema: Any = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        **params: Any,
    ) -> PreparedCall:
        """Resolve the agent, build the request and key it: everything but sending it.

        Takes the arguments of :meth:`execute_agent`; raises
        :class:`AgentNotFoundError` for an unknown agent.
        """
        agent = self.agents.get(agent_name)
        if max_tokens is not None:
            max_tokens = checks.count("max_tokens", max_tokens)
        params = checks.sampling(params)
        if schema is not None:
            try:
                answer_format = output_format(schema)
            except (TypeError, ValueError):
                raise
            except Exception as exc:  # a schema the SDK cannot turn into the API's format
                raise ValueError(f"schema: {exc}") from exc
            params["output_config"] = {**(params.get("output_config") or {}), "format": answer_format}
        for tool in params.get("tools") or ():
            if not callable(tool) and not isinstance(tool, Mapping):
                raise TypeError(f"A tool must be a function or a tool definition (a dict), not {type(tool).__name__}.")
        functions = [tool for tool in params.get("tools") or () if callable(tool)]
        try:
            tools = runnable(functions) if functions else ()
        except TypeError:
            raise
        except Exception as exc:  # a function the SDK cannot describe (a parameter type it has no schema for)
            raise ValueError(f"tools: {_first_line(exc)}") from exc
        if tools:
            max_turns = checks.count("max_turns", max_turns, high=100)
            kept = [tool for tool in params["tools"] if not callable(tool)]
            params["tools"] = kept + definitions(tools)
        request = self.build_request(
            agent,
            task,
            model=model,
            max_tokens=max_tokens,
            system=system,
            history=history,
            attachments=attachments,
            **params,
        )
        if self.cache is None:
            mode, key = "no-cache", None
        else:
            mode = self.cache.mode if cache_mode is None else check_mode(cache_mode)
            key = None if mode == "no-cache" else self.cache.key(request)
            if key is not None and tools:
                # A tool loop's answer is not the single reply the same request would get, and it
                # depends on how many replies the loop may take.
                key = hashlib.blake2b(f"{key}|tool-loop|{max_turns}".encode(), digest_size=32).hexdigest()
        limit = self.timeout_seconds if timeout is None else checks.seconds("timeout", timeout)
        return PreparedCall(
            agent.name, task, request, key, mode, limit, item, self.backend.origin, schema, tools, max_turns
        )

    def cached(self, call: PreparedCall) -> AgentResult | None:
        """The cached result of ``call``, found without awaiting anything; None if it needs the API.

        Lets synchronous callers (a re-run notebook cell) skip the event loop
        on a hit. A miss is not counted here: :meth:`run` counts it.
        """
        if self.cache is None or call.key is None or call.mode == "refresh":
            return None
        start = self._timer()
        found = self.cache.find(call.key, call.origin, replay=call.mode == "replay")
        if found is None:
            return None
        return self._result(call, found.completion, found.source, start)

    def needs_api(self, calls: Iterable[PreparedCall]) -> bool:
        """Whether any of ``calls`` would have to reach the API now; counts nothing."""
        for call in calls:
            if call.mode == "replay":
                continue
            if self.cache is None or call.key is None or call.mode == "refresh":
                return True
            if not self.cache.contains(call.key, call.origin):
                return True
        return False

    async def run(
        self,
        call: PreparedCall,
        *,
        slot: Slot | None = None,
        on_text: Callable[[str], object] | None = None,
        looked_up: bool = False,
        budget: Budget | None = None,
    ) -> AgentResult:
        """Answer ``call`` from the cache or the API. Failures come back as results, not exceptions.

        ``slot`` is the concurrency limit of the batch the call belongs to;
        ``on_text`` streams the answer as it arrives; ``looked_up`` says that
        :meth:`cached` has just missed, so the cache is not read again;
        ``budget``, once spent, stops the call from being sent (a hit is still served).
        """
        start = self._timer()

        async def send() -> Completion:
            completion = await self._send(call, slot, on_text, budget)
            if call.schema is not None and completion.stop_reason not in ("refusal", "max_tokens"):
                # Checked before the cache takes it: an answer that breaks the schema is not kept.
                try:
                    parse_answer(call.schema, completion.text)
                except SchemaError as exc:
                    exc.completion = completion
                    raise
            return completion

        try:
            if self.cache is not None:
                completion, source = await self.cache.fetch(
                    call.request,
                    send,
                    key=call.key,
                    origin=call.origin,
                    mode=call.mode,
                    agent=call.agent,
                    looked_up=looked_up,
                )
            else:
                completion, source = await send(), API
        except Exception as exc:  # one call's failure, or a bug it met, must not escape as an exception
            result = failure(call, exc, latency=self._timer() - start)
            answered = getattr(exc, "completion", None)
            if isinstance(answered, Completion):  # answered, then refused here: the answer was still billed
                usage = Usage.of(answered.message.get("usage"))
                result.input_tokens, result.output_tokens = usage.input, usage.output
                result.cost = self.cost_of(answered.model or call.model, usage)
                result.completion = answered
                self.ledger.add(result)
                if budget is not None:
                    budget.ledger.add(result)
            return result
        result = self._result(call, completion, source, start)
        self.ledger.add(result)
        if budget is not None:
            budget.ledger.add(result)
        return result

    @staticmethod
    def _default_model(model: str | None, settings: Settings) -> str:
        if model:
            return resolve_model(model)
        try:
            return resolve_model(settings.model)
        except ModelNotFoundError as exc:
            # Named after the variable the user set, since no argument named it.
            raise ModelNotFoundError(exc.name, exc.suggestion, setting=ENV_MODEL) from None

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

        A name that names nothing is a mistake to fix, not a failed call: an
        unknown agent or model raises (with the closest name), as in :meth:`batch`.

        ``params`` (temperature, top_p, stop_sequences, tools...) override the
        agent's defaults; ``on_text`` streams the answer as it arrives.
        """
        try:
            call = self.prepare(
                agent_name,
                task,
                model=model,
                max_tokens=max_tokens,
                system=system,
                cache_mode=cache_mode,
                timeout=timeout,
                item=item,
                **params,
            )
        except (AgentNotFoundError, ModelNotFoundError):
            raise
        except Exception as exc:  # options that cannot be sent or keyed: this call fails, nothing is sent
            return failure(Call(agent_name, task, model, item), exc)
        return await self.run(call, on_text=on_text)

    def _result(self, call: PreparedCall, completion: Completion, source: str, start: float) -> AgentResult:
        message_model = completion.model or call.model
        cached = source != API
        usage = Usage.of(completion.message.get("usage"))
        with self._outputs_lock:  # a background sweep's thread adds to it too
            seen = self._outputs.get((call.agent, call.model), (0, 0))
            self._outputs[call.agent, call.model] = (seen[0] + 1, seen[1] + usage.output)
        parsed = None
        if call.schema is not None and completion.stop_reason not in ("refusal", "max_tokens"):
            try:
                parsed = parse_answer(call.schema, completion.text)
            except SchemaError as exc:
                return failure(call, exc, latency=completion.latency)
        return AgentResult(
            call.agent,
            True,
            output=completion.text,
            model=message_model,
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write_5m + usage.cache_write_1h,
            # A cached answer costs nothing now; the saving shows in stats().cost_saved.
            cost=0.0 if cached else self.cost_of(message_model, usage),
            # A live call's own time, not the wait for a concurrency slot before it.
            latency=completion.latency if not cached else self._timer() - start,
            original_latency=completion.latency,
            request_id=completion.request_id,
            cached=cached,
            source=source,
            stop_reason=completion.stop_reason,
            task=call.task,
            item=call.item,
            completion=completion,
            parsed=parsed,
        )

    async def _send(
        self,
        call: PreparedCall,
        slot: Slot | None,
        on_text: Callable[[str], object] | None,
        budget: Budget | None = None,
    ) -> Completion:
        semaphore = slot.semaphore if slot is not None and slot.semaphore is not None else self._semaphore()
        async with semaphore:
            if budget is not None:  # checked with the slot held: what the calls before it spent is known by now
                budget.check()
            if slot is not None:
                slot.started()
            return await self.backend.send(
                call.request, timeout=call.timeout, on_text=on_text, tools=call.tools, max_turns=call.max_turns
            )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrent)
        return semaphore

    def batch(
        self,
        tasks: Iterable[Call | Sequence[Any]],
        *,
        on_update: Callable[[Batch], object] | None = None,
        concurrency: int | None = None,
        budget: float | None = None,
        **options: Any,
    ) -> Batch:
        """A :class:`Batch` of calls, prepared but not started; ``await`` it or call ``start()``.

        ``options`` apply to every call (a call's own options and model win);
        ``concurrency`` replaces ``max_concurrent`` for this batch's calls;
        once the batch's answers have cost ``budget`` dollars, its remaining
        calls are not sent (status "over budget"; hits are still served).
        A call that cannot be prepared (an unknown agent, options that cannot
        be sent) raises here, before any call is made.
        """
        cap = Budget(budget) if budget is not None else None
        calls = self._prepare_all(tasks, options)
        if cap is not None:
            unpriced = sorted({call.model for call in calls if self.cost_of(call.model, Usage(1, 1)) is None})
            if unpriced:
                raise ValueError(
                    f"budget: {', '.join(unpriced)} has no price, so its spend cannot be counted (add it with prices=)."
                )
        turns: dict[int, Turn] = {}
        if self.prompt_caching:
            calls, by_index = plan_prompt_cache(calls, will_send=lambda call: not self._is_cached(call))
            turns = {id(calls[index]): turn for index, turn in by_index.items()}
        run = partial(self._run_in_slot, budget=cap, turns=turns)
        batch = Batch(calls, run, on_update=on_update, concurrency=concurrency)
        batch.budget = cap
        return batch

    def message_batch(
        self,
        tasks: Iterable[Call | Sequence[Any]],
        *,
        on_update: Callable[[Batch], object] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        **options: Any,
    ) -> Batch:
        """As :meth:`batch`, but the cache misses go to the Message Batches API (half price, asynchronous).

        Requests are deduplicated by cache key (their ``custom_id``), written
        down in the cache file before submission and collected into the cache
        when their batch ends; an earlier run's open batch is polled, not
        submitted again. ``batch.remote`` describes the batches while polling
        (every ``poll_seconds`` at most).
        """
        calls = self._prepare_all(tasks, options)
        if any(call.tools for call in calls):
            raise ValueError(
                "Tools run in a loop of replies, which a Message Batch cannot hold: drop --batch or --tools."
            )
        runner = BatchRunner(
            calls,
            self.backend,
            journal=self.journal,
            cached=self.cached,
            will_send=self._will_send,
            answered=self._batch_answer,
            store=self._store_batch_answer,
            fallback=self.run,
            missed=self._count_miss,
            flush=self.cache.flush if self.cache is not None else None,
            poll_seconds=checks.seconds("poll_seconds", poll_seconds),
        )
        batch = Batch(calls, runner, on_update=on_update)
        runner.on_status = batch.notify
        batch.remote = runner
        return batch

    async def execute_batch(self, tasks: Iterable[Call | Sequence[Any]], **options: Any) -> list[AgentResult]:
        """Run many calls through the Message Batches API (see :meth:`message_batch`); results in input order."""
        return await self.message_batch(tasks, **options).wait()

    @property
    def journal(self) -> BatchJournal | None:
        """Where Message Batches are written down: the cache file (None without a cache file)."""
        if self._journal is None and self.cache is not None and self.cache.path is not None:
            self._journal = BatchJournal(self.cache.path)
        return self._journal

    async def collect_batches(self) -> list[tuple[Job, BatchStatus | None]]:
        """Poll this endpoint's open Message Batches and collect the ended ones into the cache.

        Each written-down job with its state now (None when the endpoint no
        longer knows it); answers of ended ones are in the cache afterwards.
        """
        journal = self.journal
        if journal is None:
            return []
        return await collect_open(self.backend, journal, self._store_batch_answer)

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        """Ask the API to cancel a Message Batch; what it already answered can still be collected."""
        return await self.backend.cancel_batch(batch_id)

    def _prepare_all(self, tasks: Iterable[Call | Sequence[Any]], options: Mapping[str, Any]) -> list[PreparedCall]:
        calls = []
        for call in as_calls(tasks):
            merged = {**options, **call.options}
            model = call.model or merged.pop("model", None)
            item = call.item if call.item is not None else merged.pop("item", None)
            merged.pop("model", None)
            merged.pop("item", None)
            calls.append(self.prepare(call.agent, call.task, model=model, item=item, **merged))
        return calls

    def _count_miss(self, call: PreparedCall) -> None:
        if self.cache is not None and call.key is not None:
            self.cache.missed()

    def _will_send(self, call: PreparedCall) -> bool:
        return call.mode != "replay" and not self._is_cached(call)

    def _batch_answer(self, call: PreparedCall, completion: Completion, shared: bool) -> AgentResult:
        result = self._result(call, completion, SHARED if shared else API, self._timer())
        self.ledger.add(result)
        return result

    def _store_batch_answer(self, key: str, request: Request, completion: Completion, agent: str) -> None:
        if self.cache is not None and not key.startswith(UNKEYED):
            self.cache.store(request, completion, agent=agent, key=key)

    async def _run_in_slot(
        self, call: PreparedCall, slot: Slot, *, budget: Budget | None, turns: Mapping[int, Turn]
    ) -> AgentResult:
        turn = turns.get(id(call))
        if turn is None:
            return await self.run(call, slot=slot, budget=budget)
        if not turn.first:
            await turn.written.wait()
        try:
            return await self.run(call, slot=slot, budget=budget)
        finally:
            if turn.first:
                turn.written.set()

    async def execute_multiple(
        self, tasks: Iterable[Call | Sequence[Any]], *, budget: float | None = None, **options: Any
    ) -> list[AgentResult]:
        """Run many ``(agent, task)`` calls concurrently; results in input order.

        A failed call never loses the others. Cancelling this coroutine
        cancels the calls still in flight. With ``budget`` (dollars), a sweep
        whose :meth:`estimate` exceeds it raises :class:`BudgetExceededError`
        before anything is sent, and one that reaches it while running sends
        nothing more.
        """
        batch = self.batch(tasks, budget=budget, **options)
        if budget is not None:
            self.check_budget(await self.estimate(batch.calls), budget)
        return await batch.wait()

    async def estimate(self, calls: Sequence[PreparedCall], *, batch: bool = False) -> Estimate:
        """What ``calls`` would cost: cache hits, input tokens counted by the API, expected output, dollars.

        Only the token-counting endpoint is called; ``batch`` prices the
        calls at the Message Batches rate.
        """
        return await estimate(
            calls,
            is_cached=self._is_cached,
            count=self.backend.count_tokens,
            cost=self.cost_of,
            expected_output=self._expected_output,
            batch=batch,
        )

    @staticmethod
    def check_budget(estimate: Estimate, budget: float) -> None:
        """Raise :class:`BudgetExceededError` when the estimate passes ``budget`` dollars (or has no price)."""
        cost = estimate.cost
        if cost is None:
            raise BudgetExceededError(
                f"Cannot hold this sweep to a ${budget:.2f} budget: {estimate.unpriced} of its requests are to "
                "models without a price (add them with prices=)."
            )
        if cost > budget:
            raise BudgetExceededError(
                f"Not started: estimated ${cost:.4f} for {estimate.to_send:,} requests exceeds the ${budget:.2f} "
                "budget (lower --max-tokens, sweep fewer items or raise --budget); nothing was sent."
            )

    def _is_cached(self, call: PreparedCall) -> bool:
        if self.cache is None or call.key is None or call.mode == "refresh":
            return False
        return self.cache.contains(call.key, call.origin)

    def _expected_output(self, call: PreparedCall) -> int | None:
        answers, tokens = self._outputs.get((call.agent, call.model), (0, 0))
        return min(round(tokens / answers), call.request.max_tokens) if answers else None

    def conversation(self, agent: str, *, name: str = "", **options: Any) -> Conversation:
        """A conversation with ``agent``: each ``await conversation.send(task)`` goes with the turns before it."""
        self.agents.get(agent)  # an unknown agent fails here, not at the first turn
        return Conversation(self, agent, name=name, **options)

    def spent(self) -> Spend:
        """What this session's live answers cost (cache hits cost nothing)."""
        return self.ledger.snapshot()

    def pace(self) -> Pace | None:
        """How fast calls go out and the rate limit they ride (from the API's headers); None before any call."""
        return self.backend.pace()

    def stats(self) -> CacheStats:
        """A snapshot of the cache's statistics."""
        if self.cache is None:
            return CacheStats()
        return self.cache.stats()

    async def close(self) -> None:
        """Close HTTP connections and flush the cache file."""
        await self.backend.aclose()
        if self._journal is not None:
            self._journal.close()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> AsyncAgentOrchestrator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
