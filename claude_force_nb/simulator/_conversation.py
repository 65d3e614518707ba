"""A request's ``messages`` as the API reads them: turns, the task at hand, and which turn this is.

Consecutive messages of one role are combined into a single turn, as the
API does, so ``[user, user, assistant]`` is two turns. A user turn that only
carries ``tool_result`` blocks continues the task before it; any other user
turn starts a new one, and counts towards the turn number an answer reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from . import _capabilities

PREFILL_REFUSED = (
    "This model does not support assistant message prefill. The conversation must end with a user message."
)


class RoleRun(NamedTuple):
    """One or more consecutive messages of one role, their content as a list of blocks."""

    role: str
    blocks: list[dict[str, Any]]
    first: int  # index of its first message in ``messages``

    @property
    def text(self) -> str:
        return " ".join(b["text"] for b in self.blocks if b.get("type") == "text" and isinstance(b.get("text"), str))

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        return [b for b in self.blocks if b.get("type") == "tool_result"]

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.blocks if b.get("type") == "tool_use"]

    @property
    def asks(self) -> bool:
        """A user turn that asks something new, rather than only reporting tool results."""
        return self.role == "user" and any(b.get("type") != "tool_result" for b in self.blocks)


def blocks_of(content: Any) -> list[dict[str, Any]]:
    """Message content as blocks: a string is shorthand for one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def turns(messages: Sequence[Mapping[str, Any]]) -> list[RoleRun]:
    """The conversation's turns, consecutive same-role messages combined."""
    found: list[RoleRun] = []
    for i, message in enumerate(messages):
        role, blocks = message.get("role"), blocks_of(message.get("content"))
        if found and found[-1].role == role:
            found[-1].blocks.extend(blocks)
        else:
            found.append(RoleRun(str(role), list(blocks), i))
    return found


def unmarked(value: Any) -> Any:
    """``value`` without its ``cache_control`` marks: they decide what is cached, never what the model says."""
    if isinstance(value, list):
        return [unmarked(item) for item in value]
    if isinstance(value, dict):
        return {k: unmarked(v) for k, v in value.items() if k != "cache_control"}
    return value


def tasks(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each asking user turn said, oldest first: the last is the task at hand, their count the turn number."""
    return [turn.text for turn in turns(messages) if turn.asks]


def check(model: str, messages: Sequence[Mapping[str, Any]]) -> None:
    """ValueError, worded as the API's 400, for a prefill the model does not take."""
    found = turns(messages)
    if found and found[-1].role == "assistant" and model in _capabilities.NO_PREFILL:
        raise ValueError(PREFILL_REFUSED)
