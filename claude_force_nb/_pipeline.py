"""One pipeline for every call: prepare, look up, send, validate, store, and make the result.

However a call is sent (one request, a stream, a tool loop, or a Message
Batch), it passes through these steps, each rule written once here:

- **prepare** (:mod:`._prepare`): the agent and options become a request, its key and mode;
- **lookup**: the cache answers, counting a hit, or does not, counting a miss;
- **send**: identical calls in flight share one (single-flight); a :class:`Sender` makes it;
- **validate** and **store** (:meth:`Pipeline.keep`): an answer that breaks its schema is billed but
  not kept, any other goes into the cache. Senders hand every answer to ``keep`` before returning it,
  when they choose: a Message Batch keeps its answers before it closes its job;
- **result**: tokens, cost and latency; the session's ledger and the sweep's budget count it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from ._cache import API, SHARED, ResponseCache
from ._cache.flight import Flights
from ._cache.team_flight import Claim
from ._call import PreparedCall
from ._errors import ClaudeForceWarning, SchemaError
from ._pricing import CostOf, Usage
from ._request import Completion
from ._results import AgentResult, failure
from ._schema import parse as parse_answer
from ._spend import Budget, Ledger
from ._sweep import Slot
from ._tools import tool_runs_of

# Seconds a claim across machines outlives its call's deadline, for the answer to be written.
CLAIM_MARGIN = 30.0
# The pipeline's validate-and-store step, handed to senders.
Keep = Callable[[PreparedCall, Completion], Completion]


class Sender(Protocol):
    """Makes the API call for a call the cache did not answer, and hands its answer to ``keep``.

    A sender whose answers come within the call's deadline sets ``claims = True``: kernels on other
    machines asking the same then wait for its answer (through a team cache). One without it (a Message
    Batch, which may take a day) makes no claims.
    """

    def admit(self, slot: Slot | None) -> contextlib.AbstractAsyncContextManager[object]:
        """Hold what a call needs before it is sent (a concurrency slot, or nothing)."""

    async def send(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> Completion:
        """The answer, kept (or a :class:`SchemaError` carrying it); raise :class:`CallError` on failure."""


class Pipeline:
    """The steps every call goes through; the orchestrator's methods are thin layers over it."""

    def __init__(
        self,
        *,
        cache: ResponseCache | None,
        cost_of: CostOf,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.cache = cache
        self.ledger = Ledger()
        self._cost_of = cost_of
        self._timer = timer
        self._flights: Flights[Completion] = Flights()
        # Output tokens of this session's answers by (agent, model): (answers, tokens), for estimates.
        self._outputs: dict[tuple[str, str], tuple[int, int]] = {}
        self._outputs_lock = threading.Lock()

    # -- the rules -----------------------------------------------------------------------------------

    def cacheable(self, call: PreparedCall) -> bool:
        """Whether the cache may answer, share and keep ``call`` (not with no cache, nor in no-cache mode)."""
        return self.cache is not None and call.key is not None

    def in_cache(self, call: PreparedCall) -> bool:
        """Whether the cache holds an answer it would serve ``call`` now; counts and promotes nothing."""
        return self.peek(call) is not None

    def peek(self, call: PreparedCall) -> Completion | None:
        """The answer the cache would serve ``call`` now, or None; counts and promotes nothing."""
        if not self.cacheable(call) or call.mode == "refresh":
            return None
        assert self.cache is not None and call.key is not None
        hit = self.cache.lookup(call.key, call.origin, replay=call.mode == "replay", peek=True, accept=_valid(call))
        return hit.completion if hit is not None else None

    def will_send(self, call: PreparedCall) -> bool:
        """Whether ``call`` would reach the API now (a replay never does); counts nothing."""
        return call.mode != "replay" and not self.in_cache(call)

    # -- the steps -----------------------------------------------------------------------------------

    async def answer(
        self,
        call: PreparedCall,
        slot: Slot | None = None,
        *,
        sender: Sender,
        on_text: Callable[[str], object] | None = None,
        budget: Budget | None = None,
    ) -> AgentResult:
        """Look ``call`` up, else send it through ``sender``. Failures come back as results, not exceptions."""
        return self.lookup(call) or await self.send(call, sender, slot=slot, on_text=on_text, budget=budget)

    def lookup(self, call: PreparedCall) -> AgentResult | None:
        """The cached answer's result (a hit), or None (a miss) when ``call`` must be sent; needs no event loop.

        A replay that misses is a failed result: it is never sent.
        """
        if not self.cacheable(call) or call.mode == "refresh":
            return None
        assert self.cache is not None and call.key is not None
        start = self._timer()
        replay = call.mode == "replay"
        try:
            hit = self.cache.lookup(call.key, call.origin, replay=replay, accept=_valid(call))
            if hit is not None:
                return self._result(call, hit.completion, hit.source, start, known_cost=hit.cost)
        except Exception as exc:  # a bug it met (a price that raises, say) fails this call, never the sweep
            return failure(call, exc, latency=self._timer() - start)
        if replay:
            return failure(call, self.cache.miss_error(call.request, call.agent))
        return None

    async def send(
        self,
        call: PreparedCall,
        sender: Sender,
        *,
        slot: Slot | None = None,
        on_text: Callable[[str], object] | None = None,
        budget: Budget | None = None,
    ) -> AgentResult:
        """Send ``call`` (after a miss), sharing the answer of an identical call in flight."""
        start = self._timer()
        made = False  # by this call, not shared from another's flight: only then is a refused answer its bill
        elsewhere = False  # answered by another kernel's call, through the team cache

        async def make() -> Completion:
            nonlocal made, elsewhere
            async with sender.admit(slot):
                # Claimed with the slot held, so a claim's lease runs while its call is sent, not queued.
                claim = await self._claim(call, sender)
                if claim is not None and claim.row is not None:
                    elsewhere = True
                    return claim.row.completion
                made = True
                try:
                    return await sent()
                finally:
                    if claim is not None and self.cache is not None:
                        self.cache.release(claim)  # queued behind the answer keep() stored, when there is one

        async def sent() -> Completion:
            if budget is not None:  # checked with the slot held: what the calls before it spent is known
                budget.check()
            if slot is not None:
                slot.started()
            begun = self._timer()
            try:
                completion = await sender.send(call, on_text=on_text)
            except BaseException:
                if self.cache is not None:
                    self.cache.sent(self._timer() - begun)
                raise
            if self.cache is not None:
                # The call's own time: a Message Batch's answers take none, whatever the batch took.
                self.cache.sent(completion.latency)
            return completion

        try:
            shared = False
            if self.cacheable(call):
                # By kind of sender: a live call never waits on a Message Batch that happens to ask the same.
                completion, shared = await self._flights.share((call.origin, call.key, type(sender)), make)
            else:
                completion = await make()
            if shared or elsewhere:  # another call in flight answered it: in this kernel, or another's
                assert self.cache is not None
                self.cache.shared(completion, call.model)
            result = self._result(call, completion, SHARED if shared or elsewhere else API, start)
        except Exception as exc:  # one call's failure, or a bug it met, must not escape as an exception
            answered = getattr(exc, "completion", None) if made else None
            return self._failed(call, exc, start, answered if isinstance(answered, Completion) else None, budget)
        self._count(result, budget)
        return result

    async def _claim(self, call: PreparedCall, sender: Sender) -> Claim | None:
        """Hold ``call`` across machines while it is sent, or another kernel's answer; None where none apply."""
        # Only a plain miss is claimed: a refresh sends whatever is stored, and a replay never sends. An answer
        # that read this kernel (--context) is this kernel's to make: another's read other data.
        if self.cache is None or not call.key or call.mode != "normal" or not getattr(sender, "claims", False):
            return None
        if call.context is not None:
            return None
        return await self.cache.claim(call.key, call.origin, call.timeout + CLAIM_MARGIN)

    def keep(self, call: PreparedCall, completion: Completion) -> Completion:
        """Validate ``completion`` and store it: one that breaks the call's schema raises, carrying it, unkept."""
        _validated(call, completion)
        if self.cacheable(call):
            assert self.cache is not None and call.key is not None
            try:
                self.cache.store(call.request, completion, agent=call.agent, key=call.key, origin=call.origin)
            except Exception as exc:  # an answer that cannot be kept is still the answer
                warnings.warn(
                    f"Could not cache an answer ({type(exc).__name__}: {exc}).", ClaudeForceWarning, stacklevel=2
                )
        return completion

    # -- results -------------------------------------------------------------------------------------

    def expected_output(self, call: PreparedCall) -> int | None:
        """Output tokens ``call`` may take, from this session's answers of its agent and model; None without any."""
        answers, tokens = self._outputs.get((call.agent, call.model), (0, 0))
        return min(round(tokens / answers), call.request.max_tokens) if answers else None

    def _result(
        self,
        call: PreparedCall,
        completion: Completion,
        source: str,
        start: float,
        *,
        known_cost: tuple[float | None] | None = None,
    ) -> AgentResult:
        message_model = completion.model or call.model
        cached = source != API
        usage = Usage.of(completion.message.get("usage"))
        # A hit's cost the cache has worked out already: pricing it again would slow every re-run cell.
        cost = known_cost[0] if known_cost is not None else self._cost_of(message_model, usage)
        with self._outputs_lock:  # a background sweep's thread adds to it too
            seen = self._outputs.get((call.agent, call.model), (0, 0))
            self._outputs[call.agent, call.model] = (seen[0] + 1, seen[1] + usage.output)
        try:
            parsed = _validated(call, completion)
        except SchemaError as exc:  # a shared answer that broke the schema its maker was refused for
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
            cost=0.0 if cached else cost,
            original_cost=cost,
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
            sample=call.sample,
        )

    def _failed(
        self,
        call: PreparedCall,
        exc: BaseException,
        start: float,
        answered: Completion | None,
        budget: Budget | None,
    ) -> AgentResult:
        result = failure(call, exc, latency=self._timer() - start)
        if answered is not None:  # answered, then refused here: the answer was still billed
            usage = Usage.of(answered.message.get("usage"))
            result.input_tokens, result.output_tokens = usage.input, usage.output
            result.cost = result.original_cost = self._cost_of(answered.model or call.model, usage)
            result.completion = answered
            self._count(result, budget)
        return result

    def _count(self, result: AgentResult, budget: Budget | None) -> None:
        self.ledger.add(result)
        if budget is not None:
            budget.ledger.add(result)


def _validated(call: PreparedCall, completion: Completion) -> Any:
    """The answer read with the call's schema (None without one); :class:`SchemaError`, carrying it, if it breaks it."""
    if call.schema is None or completion.stop_reason in ("refusal", "max_tokens"):
        return None
    try:
        return parse_answer(call.schema, completion.text)
    except SchemaError as exc:
        exc.completion = completion
        raise


def _valid(call: PreparedCall) -> Callable[[Completion], bool] | None:
    """What a cached answer must satisfy to be served for ``call``: its schema, if it has one; with
    ``--context``, every read of the kernel it made must give, now, what the model saw."""
    if call.schema is None and call.context is None:
        return None

    def valid(completion: Completion) -> bool:
        if call.context is not None and not call.context.sees_same(tool_runs_of(completion.message)):
            return False
        try:
            _validated(call, completion)
        except SchemaError:
            return False
        return True

    return valid
