"""Python functions as tools: described by the SDK from their signatures and docstrings, run by its tool runner.

The definitions go in the request (and so in the cache key); the functions
travel beside it. A tool that raises hands its error to the model, as the
runner does; a loop that has not ended after ``max_turns`` replies stops there.
A cached answer that used tools is served without running them again, and says
so; ``--refresh`` (cache_mode="refresh") runs them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

DEFAULT_MAX_TURNS = 8
# Where a tool-using answer keeps what its tools did, beside the API's own fields.
RUNS_FIELD = "claude_force_nb_tools"


def runnable(functions: Sequence[Callable[..., Any]]) -> tuple[Any, ...]:
    """The SDK's async function tools for ``functions`` (plain ones run on a worker thread).

    What a function returns goes back to the model as text: a string as it is, anything else as JSON.
    """
    from anthropic import beta_async_tool  # the SDK is needed to run tools anyway

    tools = []
    for function in functions:
        if not callable(function):
            raise TypeError(f"A tool must be a function, not {type(function).__name__}.")
        tools.append(beta_async_tool(_awaitable(function)))
    return tuple(tools)


def definitions(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """What the API is told of each tool: name, description, input schema."""
    return [dict(tool.to_dict()) for tool in tools]


def tool_runs(transcript: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tool call of a tool loop's messages with its result: name, input, result, is_error."""
    results: dict[str, dict[str, Any]] = {}
    calls: list[dict[str, Any]] = []
    for message in transcript:
        for block in message.get("content") or ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                calls.append(block)
            elif block.get("type") == "tool_result":
                results[block.get("tool_use_id", "")] = block
    runs = []
    for call in calls:
        result = results.get(call.get("id", ""), {})
        runs.append(
            {
                "name": call.get("name", ""),
                "input": call.get("input", {}),
                "result": _text(result.get("content")),
                "is_error": bool(result.get("is_error")),
            }
        )
    return runs


def tool_runs_of(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tool runs a tool loop's answer keeps (see :func:`tool_runs`); none for any other answer."""
    loop = message.get(RUNS_FIELD)
    runs = loop.get("runs") if isinstance(loop, dict) else None
    return [run for run in runs if isinstance(run, dict)] if isinstance(runs, list) else []


def _awaitable(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a coroutine whose result is text, as a tool result must be.

    A plain function runs on a worker thread: a slow tool must not hold the event
    loop (and every other call on it), and the call's deadline must still count.
    """

    @functools.wraps(function)
    async def call(*args: Any, **kwargs: Any) -> str:
        if inspect.iscoroutinefunction(function):
            value = await function(*args, **kwargs)
        else:
            value = await asyncio.to_thread(function, *args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        return _as_text(value)

    # The SDK reads the parameters from the function's own annotations (a builtin has none), never
    # from this wrapper's, which name types only this module knows.
    call.__annotations__ = dict(getattr(function, "__annotations__", None) or {})
    return call


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return "" if content is None else str(content)
