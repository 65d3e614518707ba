"""What a sweep would cost before it is sent: calls, cache hits, counted input tokens, expected output, dollars."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ._call import PreparedCall
from ._errors import BudgetExceededError
from ._pricing import Usage
from ._request import Request, prompt_chars

# Requests whose tokens the counting endpoint counts one by one; past this many, the rest are
# estimated from their length at the tokens per character of those counted (the endpoint has
# its own rate limit, and a 10,000-item sweep should not spend minutes on an estimate).
COUNT_SAMPLE = 200
COUNT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Estimate:
    """A sweep before it is sent.

    ``calls`` in all, ``cached`` of them answered by the cache, ``to_send``
    distinct requests left (identical calls share one). ``input_tokens`` are
    those requests' prompts, ``counted`` of them by the token-counting
    endpoint and the rest from their length; ``output_tokens`` are expected
    from this session's earlier answers of the same agent and model, or
    ``max_tokens`` (a ceiling) for ``at_ceiling`` requests without any.
    ``cost`` is None when a model has no price (``unpriced`` requests).
    ``grading`` estimates the grader calls of a graded sweep; ``cost`` includes them.
    """

    calls: int
    cached: int
    to_send: int
    input_tokens: int
    output_tokens: int
    counted: int
    at_ceiling: int
    input_cost: float
    output_cost: float
    unpriced: int
    batch: bool = False
    grading: Estimate | None = None

    @property
    def requests(self) -> int:
        """Requests to send, grader calls included."""
        return self.to_send + (self.grading.requests if self.grading is not None else 0)

    @property
    def unpriced_requests(self) -> int:
        """Requests to models without a price, grader calls included."""
        return self.unpriced + (self.grading.unpriced_requests if self.grading is not None else 0)

    @property
    def cost(self) -> float | None:
        own = None if self.unpriced else self.input_cost + self.output_cost
        if self.grading is None or own is None:
            return own
        graded = self.grading.cost
        return None if graded is None else own + graded

    def describe(self) -> str:
        lines = self._lines("calls")
        if self.grading is not None:
            lines += self.grading._lines("grader calls", "the answers' expected length in place of unseen answers")
        rate = " at the Message Batches price" if self.batch else ""
        if self.cost is None:
            lines.append(f"estimated cost: unknown ({self.unpriced_requests:,} requests to models without a price)")
        elif self.grading is not None and self.grading.cost is not None:
            own = self.input_cost + self.output_cost
            lines.append(
                f"estimated cost: ${self.cost:.4f}{rate} (answers ${own:.4f}, grades ${self.grading.cost:.4f})"
            )
        else:
            lines.append(
                f"estimated cost: ${self.cost:.4f}{rate} (input ${self.input_cost:.4f}, output ${self.output_cost:.4f})"
            )
        return "\n".join(lines)

    def _lines(self, what: str, padded: str = "") -> list[str]:
        lines = [f"{what}: {self.calls:,}; answered by the cache: {self.cached:,}; to send: {self.to_send:,}"]
        if self.to_send:
            how = "counted by the token-counting endpoint"
            if self.counted < self.to_send:
                how = f"{self.counted:,} requests counted by the endpoint, the rest estimated from their length"
            if padded:
                how += f"; {padded}"
            lines.append(f"input tokens: {self.input_tokens:,} ({how})")
            if self.at_ceiling == self.to_send:
                basis = "at max_tokens, a ceiling: no earlier answers of these agents to go by"
            elif self.at_ceiling:
                basis = f"from earlier answers; {self.at_ceiling:,} requests at max_tokens, a ceiling"
            else:
                basis = "from this session's earlier answers of the same agents"
            lines.append(f"output tokens: {self.output_tokens:,} expected ({basis})")
        return lines


async def estimate(
    calls: Sequence[PreparedCall],
    *,
    is_cached: Callable[[PreparedCall], bool],
    count: Callable[[Request], Awaitable[int]],
    cost: Callable[[str, Usage], float | None],
    expected_output: Callable[[PreparedCall], int | None],
    batch: bool = False,
    padding: Callable[[PreparedCall], int] | None = None,
) -> Estimate:
    """Estimate ``calls``: ``count`` is the token-counting endpoint; nothing else is sent.

    ``padding`` adds input tokens to a call whose prompt is not whole yet (a grade's, before its answer).
    """
    cached = 0
    unique: dict[object, PreparedCall] = {}
    for index, call in enumerate(calls):
        if is_cached(call):
            cached += 1
        else:
            unique.setdefault(call.key if call.key is not None else index, call)
    pending = list(unique.values())
    sample = pending[:COUNT_SAMPLE]
    limit = asyncio.Semaphore(COUNT_CONCURRENCY)

    async def counted(call: PreparedCall) -> int:
        async with limit:
            return await count(call.request)

    tokens = list(await asyncio.gather(*(counted(call) for call in sample)))
    chars = sum(prompt_chars(call.request.to_kwargs()) for call in sample)
    per_char = sum(tokens) / chars if chars else 0.25
    tokens += [math.ceil(prompt_chars(call.request.to_kwargs()) * per_char) for call in pending[len(sample) :]]
    if padding is not None:
        tokens = [prompt + padding(call) for call, prompt in zip(pending, tokens, strict=True)]
    input_cost = output_cost = 0.0
    output_tokens = at_ceiling = unpriced = 0
    for call, prompt in zip(pending, tokens, strict=True):
        expected = expected_output(call)
        if expected is None:
            expected, at_ceiling = call.request.max_tokens, at_ceiling + 1
        output_tokens += expected
        # Priced whole, then split: a long prompt can change the price of the output too.
        whole = cost(call.model, Usage(prompt, expected, batch=batch))
        fresh = cost(call.model, Usage(prompt, 0, batch=batch))
        if whole is None or fresh is None:
            unpriced += 1
            continue
        input_cost += fresh
        output_cost += whole - fresh
    return Estimate(
        calls=len(calls),
        cached=cached,
        to_send=len(pending),
        input_tokens=sum(tokens),
        output_tokens=output_tokens,
        counted=len(sample),
        at_ceiling=at_ceiling,
        input_cost=input_cost,
        output_cost=output_cost,
        unpriced=unpriced,
        batch=batch,
    )


def check_budget(estimate: Estimate, budget: float) -> None:
    """Raise :class:`BudgetExceededError` when the estimate passes ``budget`` dollars (or has no price)."""
    cost = estimate.cost
    if cost is None:
        raise BudgetExceededError(
            f"Cannot hold this sweep to a ${budget:.2f} budget: {estimate.unpriced_requests} of its requests are to "
            "models without a price (add them with prices=)."
        )
    if cost > budget:
        raise BudgetExceededError(
            f"Not started: estimated ${cost:.4f} for {estimate.requests:,} requests exceeds the ${budget:.2f} "
            "budget (lower --max-tokens, sweep fewer items or raise --budget); nothing was sent."
        )
