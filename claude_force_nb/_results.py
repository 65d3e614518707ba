"""The outcome of one agent call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._errors import BudgetExceededError
from ._request import Completion, Thought
from ._text import CodeBlock, code_blocks, parse_json
from ._tools import RUNS_FIELD, tool_runs_of

# Stop reasons that leave an answer incomplete, with the status word a table shows and what helps.
INCOMPLETE = {
    "max_tokens": ("truncated", "it stopped at the max_tokens limit; raise --max-tokens (max_tokens=) for the rest"),
    "model_context_window_exceeded": ("truncated", "it filled the model's context window; shorten the input"),
    "refusal": ("refused", "the model declined to answer; rephrase the task"),
    "tool_use": ("tool use", "the model stopped to call a tool; the text is only its preamble"),
    "pause_turn": ("paused", "the model paused a long turn; send it again to let it continue"),
}


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one answer.

    ``score`` is from 0 to 1 (a grader's 0-10 is divided by 10; a check's True
    is 1); ``passed`` is the scorer's own verdict. ``error`` says why there is
    neither: the scorer raised, or there was no answer to score. ``cost`` and
    ``latency`` are what a grader call took when it was made (nothing for a check).
    """

    scorer: str
    score: float | None
    passed: bool | None
    reason: str = ""
    error: str | None = None
    cost: float | None = 0.0
    latency: float = 0.0


@dataclass(eq=False)
class AgentResult:
    """What one call produced: the answer or the exception, plus its costs.

    ``latency`` is what this call took now (microseconds for a cache hit);
    ``original_latency`` is what the API call took when it was made; ``cost``
    is what this call cost (nothing when it was served from the cache; None
    when its model has no price), ``original_cost`` what it cost when it was
    made. ``input_tokens`` are the fresh ones;
    ``cache_read_tokens`` and ``cache_write_tokens`` went through the prompt
    cache, at their own rates.
    """

    agent_name: str
    success: bool
    output: str = ""
    error: BaseException | None = None
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float | None = 0.0  # None: the model has no price in the table
    latency: float = 0.0
    original_latency: float = 0.0
    request_id: str | None = None
    cached: bool = False
    source: str = ""
    stop_reason: str | None = None
    task: str = ""
    item: Any = None
    completion: Completion | None = field(default=None, repr=False)
    parsed: Any = None  # the answer read with the call's schema: a model instance, or JSON
    original_cost: float | None = 0.0  # what the answer cost when it was made (None: no price)
    sample: int = 0  # which of an evaluation's repeated asks this is (--samples)
    scores: tuple[Score, ...] = ()  # what an evaluation's scorers made of the answer

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def prompt_tokens(self) -> int:
        """Every input token: fresh, written to the prompt cache and read from it."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def cancelled(self) -> bool:
        """True for a call that was never answered: cancelled, interrupted, or not sent once its budget was spent."""
        return isinstance(self.error, (asyncio.CancelledError, BudgetExceededError))

    @property
    def status(self) -> str:
        """ok or cached; truncated, refused, tool use or paused for an incomplete answer; failed or cancelled."""
        if self.success:
            incomplete = INCOMPLETE.get(self.stop_reason or "")
            if incomplete is not None:
                return incomplete[0]
            return "cached" if self.cached else "ok"
        if isinstance(self.error, BudgetExceededError):
            return "over budget"
        return "cancelled" if self.cancelled else "failed"

    @property
    def synthetic(self) -> bool:
        """True when a local Messages API server wrote the answer, not Claude."""
        return self.completion is not None and self.completion.synthetic

    @property
    def complete(self) -> bool:
        """True for a whole answer; False for a failure or an answer cut short (truncated, refused...)."""
        return self.success and self.stop_reason not in INCOMPLETE

    @property
    def hint(self) -> str | None:
        """What an incomplete answer needs, in a sentence; None for a whole one."""
        incomplete = INCOMPLETE.get(self.stop_reason or "") if self.success else None
        if incomplete is not None and self._tool_loop.get("stopped"):
            turns = self._tool_loop.get("turns", 0)
            return f"the tool loop stopped after {turns} replies; raise --max-turns (max_turns=) to let it go on"
        return incomplete[1] if incomplete is not None else None

    @property
    def tool_runs(self) -> list[dict[str, Any]]:
        """Each tool the model called through the tool loop: name, input, result, is_error."""
        return tool_runs_of(self.completion.message) if self.completion is not None else []

    @property
    def _tool_loop(self) -> dict[str, Any]:
        loop = self.completion.message.get(RUNS_FIELD) if self.completion is not None else None
        return loop if isinstance(loop, dict) else {}

    @property
    def code_blocks(self) -> list[CodeBlock]:
        """Every fenced code block in the answer, in order."""
        return code_blocks(self.output)

    def json(self) -> Any:
        """The JSON value in the answer (bare or fenced); ValueError when it holds none."""
        return parse_json(self.output)

    @property
    def thinking(self) -> list[Thought]:
        """The model's thinking blocks (empty unless the request enabled thinking)."""
        return self.completion.thinking if self.completion is not None else []

    @property
    def errors(self) -> list[str]:
        """Error messages as strings (claude-force compatibility); see ``error`` for the exception."""
        return [str(self.error) or type(self.error).__name__] if self.error is not None else []

    def raise_for_error(self) -> AgentResult:
        """Raise the original exception if the call failed; return self otherwise."""
        if self.error is not None:
            raise self.error
        return self

    def __str__(self) -> str:
        return self.output if self.success else f"[{self.status}] {self.errors[0] if self.errors else ''}"


class _Described(Protocol):
    """What a failed result needs to know of its call: a Call or a PreparedCall."""

    @property
    def agent(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def item(self) -> Any: ...
    @property
    def model(self) -> str | None: ...


def failure(call: _Described, error: BaseException, *, latency: float = 0.0) -> AgentResult:
    """The result of ``call`` when it failed (or was cancelled) with ``error``."""
    return AgentResult(
        call.agent,
        False,
        error=error,
        model=call.model or "",
        latency=latency,
        task=call.task,
        item=call.item,
        sample=getattr(call, "sample", 0),  # a PreparedCall's; a Call is the first ask
    )


def scorer_names(results: Iterable[AgentResult]) -> list[str]:
    """The scorers that scored ``results``, in the order they first appear."""
    return list(dict.fromkeys(s.scorer for r in results for s in r.scores))
