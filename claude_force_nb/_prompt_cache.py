"""Prompt caching for sweeps: which calls share a prefix worth caching, and which one writes it first.

Calls of a sweep that will reach the API and share a model, system prompt and
tools long enough for that model's prompt cache have the system prompt marked
(``cache_control``). The first call of each such group goes alone; the others
wait until it has answered, so they read the prefix it wrote instead of all
writing it at once (each write costs 1.25x the input price, each read 0.1x).
A single call is never marked: with nothing to read it later, the write
premium would buy nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Sequence

from ._call import PreparedCall
from ._models import DEFAULT_MINIMUM_CACHEABLE_TOKENS, MINIMUM_CACHEABLE_TOKENS
from ._results import AgentResult
from ._sweep import Runner, Slot

# Characters per token when judging a prefix's length without counting it: on the
# high side, so that a prefix judged long enough is (an unmarked short one only
# loses the discount; a marked short one is simply not cached by the API).
CHARS_PER_TOKEN = 4.0


@dataclasses.dataclass(frozen=True, slots=True)
class PrefixTurn:
    """A call's place in its prefix group: the first writes, the rest wait for ``written``."""

    written: asyncio.Event
    first: bool


def plan(
    calls: Sequence[PreparedCall], *, will_send: Callable[[PreparedCall], bool]
) -> tuple[list[PreparedCall], dict[int, PrefixTurn]]:
    """``calls`` with shared prefixes marked, and each marked call's turn, by position."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for index, call in enumerate(calls):
        request = call.request
        if not request.system or request.cache_system:
            continue
        tools = json.dumps(request.params.get("tools"), sort_keys=True, default=str)
        if (len(request.system) + len(tools)) / CHARS_PER_TOKEN < _minimum(request.model) or not will_send(call):
            continue
        groups.setdefault((request.model, request.system, tools), []).append(index)
    marked = list(calls)
    turns: dict[int, PrefixTurn] = {}
    for indices in groups.values():
        # Identical calls share one answer: only distinct ones would read what the first wrote.
        if len({marked[index].key or index for index in indices}) < 2:
            continue
        written = asyncio.Event()
        for position, index in enumerate(indices):
            call = marked[index]
            marked[index] = dataclasses.replace(call, request=dataclasses.replace(call.request, cache_system=True))
            turns[index] = PrefixTurn(written, first=position == 0)
    return marked, turns


def _minimum(model: str) -> int:
    return MINIMUM_CACHEABLE_TOKENS.get(model, DEFAULT_MINIMUM_CACHEABLE_TOKENS)


def in_turns(run: Runner, turns: dict[int, PrefixTurn]) -> Runner:
    """``run``, with each marked call (``turns`` by id) waiting until its group's first has written the prefix."""

    async def run_in_turn(call: PreparedCall, slot: Slot) -> AgentResult:
        turn = turns.get(id(call))
        if turn is None:
            return await run(call, slot)
        if not turn.first:
            await turn.written.wait()
        try:
            return await run(call, slot)
        finally:
            if turn.first:
                turn.written.set()

    return run_in_turn
