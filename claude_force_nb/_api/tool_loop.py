"""A tool loop as one answer: the SDK's tool runner, its replies summed, its tool runs kept on the last one."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._request import SYNTHETIC_HEADER
from .._tools import RUNS_FIELD, tool_runs

if TYPE_CHECKING:
    import anthropic

# Whether each response a tool loop read was marked synthetic, for the loop running in this context.
_synthetic_seen: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "claude_force_nb_synthetic_seen", default=None
)


class Loop(NamedTuple):
    """A finished tool loop: its last reply (usage summed, runs attached), each reply's usage, and whether a
    local server wrote any of them."""

    final: dict[str, Any]
    usages: list[Any]  # each reply's usage object, as the API gave it
    synthetic: bool


async def run_loop(
    client: anthropic.AsyncAnthropic, kwargs: dict[str, Any], tools: Sequence[Any], max_turns: int
) -> Loop:
    """Run the SDK's tool runner over ``tools`` for at most ``max_turns`` replies; SDK errors propagate."""
    defined = {tool.name for tool in tools}
    kwargs["tools"] = [t for t in kwargs.get("tools", ()) if t.get("name") not in defined] + list(tools)
    transcript: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    seen = _synthetic_seen.set([])  # the runner hides its responses: the middleware says what they were
    try:
        # Only a tool loop needs to know, so only its client (a copy sharing the connections) notes it.
        runner = client.with_middleware(_note_synthetic).beta.messages.tool_runner(max_iterations=max_turns, **kwargs)
        async for reply in runner:
            message = reply.model_dump(mode="json", exclude_none=True)
            replies.append(message)
            transcript.append(message)
            answer = await runner.generate_tool_call_response()
            if answer is not None:
                transcript.append(dict(answer))
    finally:
        marks = _synthetic_seen.get() or []
        _synthetic_seen.reset(seen)
    usages = [reply.get("usage") for reply in replies]
    final = dict(replies[-1])
    final["usage"] = _summed(usage or {} for usage in usages)
    final[RUNS_FIELD] = {
        "runs": tool_runs(transcript),
        "turns": len(replies),
        "stopped": final.get("stop_reason") == "tool_use",  # the loop hit max_turns
    }
    return Loop(final, usages, any(marks))


async def _note_synthetic(request: Any, call_next: Any) -> Any:
    """SDK middleware: note, for a tool loop waiting on it, whether the answer came from a local server."""
    response = await call_next(request)
    marks = _synthetic_seen.get()
    if marks is not None:
        marks.append(SYNTHETIC_HEADER in response.http_response.headers)
    return response


def _summed(usages: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A tool loop's usage: every reply's tokens added up, as they are billed."""
    total: dict[str, Any] = {}
    for usage in usages:
        for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            if isinstance(usage.get(name), int):
                total[name] = total.get(name, 0) + usage[name]
    return total
