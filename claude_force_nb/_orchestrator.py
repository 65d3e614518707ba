"""The Python API: agents run concurrently, bounded, timed out and cached, through one pipeline."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from . import _checks as valid
from ._agents import AgentRegistry
from ._api.backend import AnthropicBackend, Backend
from ._api.pacing import Pace
from ._api.sender import DirectSender
from ._batches.collector import collect_open
from ._batches.journal import BatchJournal, Job
from ._batches.remote import BatchStatus
from ._batches.runner import DEFAULT_POLL_SECONDS, BatchSender
from ._batches.team_journal import journals
from ._cache import CacheStats, ResponseCache
from ._cache.default import default_cache
from ._cache.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from ._call import Call, PreparedCall, as_calls
from ._config import (
    DEFAULT_CACHE_MAXSIZE,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    Settings,
)
from ._conversation import Conversation
from ._errors import AgentNotFoundError, ModelNotFoundError
from ._estimate import Estimate, check_budget, estimate
from ._eval.evaluator import Checks, Evaluator
from ._eval.grade import Grade, Reference
from ._eval.scoring import Scoring
from ._offline import local_endpoint
from ._options import CallOptions
from ._pipeline import Pipeline
from ._prepare import Defaults, Preparer, default_model
from ._pricing import DEFAULT_PRICES, PriceEntry, Usage, cost_of
from ._prompt_cache import in_turns
from ._prompt_cache import plan as plan_prompt_cache
from ._results import AgentResult, failure
from ._resultset import Results
from ._spend import Budget, Spend
from ._sweep import Batch, Runner

Tasks = Iterable[Call | Sequence[Any]]  # Call objects, or (agent, task) and (agent, task, options) tuples


class AsyncAgentOrchestrator:
    """Runs agents through the Messages API with a concurrency cap and a response cache.

    >>> orchestrator = AsyncAgentOrchestrator(max_concurrent=10, timeout_seconds=120)
    >>> result = await orchestrator.execute_agent("code-reviewer", "def f(): pass")

    The options a call takes are :class:`CallOptions`' names; any other is a Messages API parameter.
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
        cache_url: str | None = None,
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
        self.settings = settings = settings or Settings.from_env()
        self.max_concurrent = valid.count("max_concurrent", max_concurrent, high=valid.MAX_CONCURRENCY)
        self.timeout_seconds = valid.seconds("timeout_seconds", timeout_seconds)
        self.model = default_model(model, settings)
        self.max_tokens = valid.count("max_tokens", max_tokens)
        self.prices = dict(prices) if prices is not None else dict(DEFAULT_PRICES)
        self.agents = agents or AgentRegistry(user_home=settings.user_home)
        self.backend: Backend = backend or AnthropicBackend(
            api_key=api_key,
            base_url=base_url,
            max_retries=valid.count("max_retries", max_retries, low=0, high=100),
            settings=settings,
            pace=pace,
            offline_endpoint=partial(local_endpoint, settings.simulator_latency),
        )
        if cache is None and enable_cache:
            cache = default_cache(
                settings,
                self.cost_of,
                path=cache_path,
                ttl_hours=cache_ttl_hours,
                maxsize=cache_maxsize,
                mode=cache_mode,
                max_rows=cache_max_rows,
                max_bytes=cache_max_bytes,
                url=cache_url,
            )
        self.cache = cache
        self.prompt_caching = prompt_caching
        self.pipeline = Pipeline(cache=cache, cost_of=self.cost_of, timer=timer)
        self.ledger = self.pipeline.ledger
        defaults = Defaults(self.model, self.max_tokens, self.timeout_seconds)
        self._preparer = Preparer(self.agents, defaults, cache, self.backend.origin)
        self._evaluator = Evaluator(self.agents, self._preparer.prepare, self.model)
        self._direct = DirectSender(self.backend, self.pipeline.keep, max_concurrent=self.max_concurrent)
        self._journals: list[BatchJournal] | None = None

    def cost_of(self, model: str, usage: Usage) -> float | None:
        """Estimated dollars for an answer's usage (prompt cache and batch rates included); None without a price."""
        return cost_of(model, usage, self.prices)

    # -- one call ------------------------------------------------------------------------------------

    def prepare(self, agent: str, task: str, options: CallOptions | None = None, **more: Any) -> PreparedCall:
        """The call, resolved, built and keyed but not sent; raises for an unknown agent or unsendable options."""
        return self._preparer.prepare(agent, task, CallOptions.of(options, **more))

    def lookup(self, call: PreparedCall) -> AgentResult | None:
        """The cached result of ``call`` (a hit), found without an event loop; None when it must be sent."""
        return self.pipeline.lookup(call)

    async def send(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> AgentResult:
        """Send ``call`` after :meth:`lookup` missed; ``on_text`` streams the answer as it arrives."""
        return await self.pipeline.send(call, self._direct, on_text=on_text)

    async def run(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> AgentResult:
        """Answer ``call`` from the cache or the API. Failures come back as results, not exceptions."""
        return await self.pipeline.answer(call, sender=self._direct, on_text=on_text)

    async def execute_agent(
        self, agent: str, task: str, *, on_text: Callable[[str], object] | None = None, **options: Any
    ) -> AgentResult:
        """Run one agent on one task; ``on_text`` streams the answer. Failures come back as results,
        but an unknown agent or model is a mistake to fix: it raises, as in :meth:`batch`."""
        try:
            call = self.prepare(agent, task, **options)
        except (AgentNotFoundError, ModelNotFoundError):
            raise
        except Exception as exc:  # options that cannot be sent or keyed: this call fails, nothing is sent
            return failure(Call(agent, task, options.get("model"), options.get("item")), exc)
        return await self.run(call, on_text=on_text)

    def conversation(self, agent: str, *, name: str = "", **options: Any) -> Conversation:
        """A conversation with ``agent``: each ``await conversation.send(task)`` goes with the turns before it."""
        self.agents.get(agent)  # an unknown agent fails here, not at the first turn
        return Conversation(self, agent, name=name, options=CallOptions.of(**options))

    # -- sweeps --------------------------------------------------------------------------------------

    def batch(
        self,
        tasks: Tasks,
        *,
        on_update: Callable[[Batch], object] | None = None,
        concurrency: int | None = None,
        budget: float | None = None,
        samples: int = 1,
        grade: str | Grade | None = None,
        checks: Checks = (),
        grader_model: str | None = None,
        reference: Reference | None = None,
        **options: Any,
    ) -> Batch:
        """A :class:`Batch` of calls, prepared but not started; ``await`` it or call ``start()``.

        ``options`` apply to every call (its own win); ``concurrency`` replaces
        ``max_concurrent``; once its answers cost ``budget`` dollars, the rest
        are not sent (hits are still served). A call that cannot be prepared
        raises here, before any is made.

        To evaluate the sweep: ``samples`` asks each call that many times (each
        a cached call of its own); ``checks`` (functions ``f(answer, item)``)
        and ``grade`` (a rubric for the grader agent, on ``grader_model``, with
        the item's ``reference`` answer) score every answer, in ``result.scores``.
        """
        scoring = self._evaluator.scoring(grade, checks, grader_model, reference)
        calls = self.prepare_all(tasks, samples=samples, **options)
        models = {call.model for call in calls} | (
            {scoring.grade.model or self.model} if scoring and scoring.grade else set()
        )
        cap = Budget.for_models(budget, models, self.cost_of) if budget is not None else None
        run: Runner = partial(self.pipeline.answer, sender=self._direct, budget=cap)
        if self.prompt_caching:
            calls, by_index = plan_prompt_cache(calls, will_send=self.pipeline.will_send)
            if by_index:
                run = in_turns(run, {id(calls[index]): turn for index, turn in by_index.items()})
        if scoring is not None:
            run = scoring.live(run, partial(self.pipeline.answer, sender=self._direct, budget=cap))
        batch = Batch(calls, run, on_update=on_update, concurrency=concurrency)
        batch.budget = cap
        batch.scoring = scoring
        return batch

    async def execute_multiple(self, tasks: Tasks, *, budget: float | None = None, **options: Any) -> list[AgentResult]:
        """Run many ``(agent, task)`` calls concurrently; results in input order, a failure losing nothing else.
        Cancelling it cancels the calls in flight; one whose :meth:`estimate` passes ``budget`` sends nothing."""
        batch = self.batch(tasks, budget=budget, **options)
        if budget is not None:
            self.check_budget(await self.estimate(batch.calls, scoring=batch.scoring), budget)
        return await batch.wait()

    def prepare_all(self, tasks: Tasks, *, samples: int = 1, **options: Any) -> list[PreparedCall]:
        """Every call of a sweep prepared, ``options`` under each call's own, each ``samples`` times in a row;
        raises as :meth:`prepare`."""
        samples = valid.count("samples", samples, high=valid.MAX_SAMPLES)
        shared = CallOptions.of(**options)
        prepare = self._preparer.prepare
        prepared = []
        for call in as_calls(tasks):
            own = call.options.over(shared)
            if samples == 1:
                prepared.append(prepare(call.agent, call.task, own))
            else:
                prepared += [prepare(call.agent, call.task, CallOptions.of(own, sample=n)) for n in range(samples)]
        return prepared

    def needs_api(self, calls: Iterable[PreparedCall]) -> bool:
        """Whether any of ``calls`` would have to reach the API now; counts nothing."""
        return any(self.pipeline.will_send(call) for call in calls)

    async def estimate(
        self, calls: Sequence[PreparedCall], *, batch: bool = False, scoring: Scoring | None = None
    ) -> Estimate:
        """What ``calls`` would cost (at the Message Batches rate with ``batch``); only tokens are counted.

        With a sweep's ``scoring`` (``batch.scoring``), its grader calls are counted too.
        """
        found = await self._estimate(calls, batch=batch)
        if scoring is None or scoring.grade is None:
            return found
        graders, lacking = scoring.stand_ins(calls, self.pipeline.peek, self._expected_output)
        grading = await self._estimate(graders, batch=batch, padding=lambda call: lacking.get(id(call), 0))
        return dataclasses.replace(found, grading=grading)

    async def _estimate(self, calls: Sequence[PreparedCall], **options: Any) -> Estimate:
        return await estimate(
            calls,
            is_cached=self.pipeline.in_cache,
            count=self.backend.count_tokens,
            cost=self.cost_of,
            expected_output=self.pipeline.expected_output,
            **options,
        )

    def _expected_output(self, call: PreparedCall) -> int:
        expected = self.pipeline.expected_output(call)
        return call.request.max_tokens if expected is None else expected

    check_budget = staticmethod(check_budget)

    # -- evaluation ----------------------------------------------------------------------------------

    async def evaluate(self, tasks: Tasks, *, batch: bool = False, **options: Any) -> Results:
        """Run and score a sweep (see :meth:`batch` for ``samples``, ``grade``, ``checks`` and the rest);
        through Message Batches with ``batch``. The results have ``scores``, ``summary()`` and ``rescore()``."""
        budget = options.pop("budget", None)
        wrong = "concurrency" if batch and "concurrency" in options else None
        wrong = wrong or ("poll_seconds" if not batch and "poll_seconds" in options else None)
        if wrong:
            raise TypeError(f"{wrong}= does not apply with batch={batch}.")
        swept = self.message_batch(tasks, **options) if batch else self.batch(tasks, budget=budget, **options)
        if budget is not None:  # checked before anything is sent; a live sweep also stops sending once spent
            self.check_budget(await self.estimate(swept.calls, batch=batch, scoring=swept.scoring), budget)
        return Results(await swept.wait(), engine=self)

    async def rescore(
        self,
        results: Sequence[AgentResult],
        *,
        grade: str | Grade | None = None,
        checks: Checks = (),
        grader_model: str | None = None,
        reference: Reference | None = None,
        batch: bool = False,
        budget: float | None = None,
    ) -> Results:
        """``results`` scored again by these scorers (theirs are replaced), from their answers: nothing is
        generated again, and only grades not in the cache are asked (through Message Batches with ``batch``)."""
        scoring = self._evaluator.scoring(grade, checks, grader_model, reference)
        if scoring is None:
            raise ValueError("rescore() needs a scorer: grade= (a rubric), checks= (functions), or both.")
        fmt = getattr(results, "format", "markdown")
        results = list(results)
        if budget is not None:  # every grade's prompt is known: held to the budget before any is asked
            self.check_budget(await self._estimate(scoring.grader_calls(results), batch=batch), budget)
        if batch:
            rescored = await scoring.score_together(
                results, partial(self._answer_batch, poll_seconds=DEFAULT_POLL_SECONDS)
            )
        else:
            models = self._evaluator.grader_model(scoring)
            cap = Budget.for_models(budget, models, self.cost_of) if budget is not None else None
            answer = partial(self.pipeline.answer, sender=self._direct, budget=cap)
            rescored = list(await asyncio.gather(*(scoring.score(r, answer) for r in results)))
        return Results(rescored, fmt=fmt, engine=self)

    # -- Message Batches -----------------------------------------------------------------------------

    def message_batch(
        self,
        tasks: Tasks,
        *,
        on_update: Callable[[Batch], object] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        samples: int = 1,
        grade: str | Grade | None = None,
        checks: Checks = (),
        grader_model: str | None = None,
        reference: Reference | None = None,
        **options: Any,
    ) -> Batch:
        """As :meth:`batch`, but the cache misses go to the Message Batches API (half price, asynchronous).

        See :class:`BatchSender`; ``batch.remote`` describes the batches, polled every ``poll_seconds`` at most.
        A grade's calls wait for every answer, then go as one more Message Batch.
        """
        scoring = self._evaluator.scoring(grade, checks, grader_model, reference)
        calls = self.prepare_all(tasks, samples=samples, **options)
        poll_seconds = valid.seconds("poll_seconds", poll_seconds)
        sender = self._batch_sender(calls, poll_seconds)
        run: Runner = partial(self.pipeline.answer, sender=sender)
        if scoring is not None:
            run = scoring.after_all(run, len(calls), partial(self._answer_batch, poll_seconds=poll_seconds))
        batch = Batch(calls, run, on_update=on_update)
        sender.on_status = batch.notify
        batch.remote = sender
        batch.scoring = scoring
        return batch

    def _batch_sender(self, calls: list[PreparedCall], poll_seconds: float) -> BatchSender:
        return BatchSender(
            calls,
            self.backend,
            journal=self.journal,
            keep=self.pipeline.keep,
            will_send=self.pipeline.will_send,
            fallback=self._direct.send_admitted,
            flush=self.cache.flush if self.cache is not None else None,
            poll_seconds=poll_seconds,
        )

    async def _answer_batch(self, calls: list[PreparedCall], *, poll_seconds: float) -> list[AgentResult]:
        sender = self._batch_sender(calls, poll_seconds)
        return await Batch(calls, partial(self.pipeline.answer, sender=sender)).wait()

    async def execute_batch(self, tasks: Tasks, **options: Any) -> list[AgentResult]:
        """Run many calls through the Message Batches API (see :meth:`message_batch`); results in input order."""
        return await self.message_batch(tasks, **options).wait()

    @property
    def journal(self) -> BatchJournal | None:
        """Where new Message Batches are written down: the team database, or the cache file (None without one)."""
        return self.journals[0] if self.journals else None

    @property
    def journals(self) -> list[BatchJournal]:
        """Every journal this session reads: the one new batches go to first (see :func:`journals`)."""
        if self._journals is None and self.cache is not None and self.cache.path is not None:
            self._journals = journals(self.cache.path, self.cache.team)
        return self._journals or []

    async def collect_batches(self) -> list[tuple[Job, BatchStatus | None]]:
        """Each open Message Batch of this endpoint with its state now (None: unknown there); ended ones collected."""
        flush = self.cache.flush if self.cache is not None else None
        found: list[tuple[Job, BatchStatus | None]] = []
        for journal in self.journals:
            found += await collect_open(self.backend, journal, self.pipeline.keep, flush=flush)
        return found

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        """Ask the API to cancel a Message Batch; what it already answered can still be collected."""
        return await self.backend.cancel_batch(batch_id)

    # -- the session ---------------------------------------------------------------------------------

    def spent(self) -> Spend:
        """What this session's live answers cost (cache hits cost nothing)."""
        return self.ledger.snapshot()

    def pace(self) -> Pace | None:
        """How fast calls go out and the rate limit they ride (from the API's headers); None before any call."""
        return self.backend.pace()

    def stats(self) -> CacheStats:
        """A snapshot of the cache's statistics."""
        return self.cache.stats() if self.cache is not None else CacheStats()

    async def close(self) -> None:
        """Close HTTP connections and flush the cache file."""
        await self.backend.aclose()
        for journal in self._journals or []:
            journal.close()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> AsyncAgentOrchestrator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
