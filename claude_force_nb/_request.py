"""The request sent to the Messages API and the completion that comes back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Set by a local Messages API server (this package's) on every answer it writes,
# so that a client can tell a synthetic answer from Claude's.
SYNTHETIC_HEADER = "x-claude-force-nb-synthetic"

# Parameters the SDK takes as typed arguments; anything else (temperature,
# top_p, top_k...) travels in ``extra_body``, as anthropic 2.x requires.
TYPED_PARAMS = ("stop_sequences", "tools", "tool_choice", "thinking", "metadata", "output_config", "service_tier")
# The API refuses a larger body with 413 request_too_large (its "Request size limits").
MAX_MESSAGES_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One ``messages.create`` call, before it is sent."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # TYPED_PARAMS only
    extra_body: dict[str, Any] = field(default_factory=dict)
    # Mark the system prompt (and the tools before it) for the API's prompt cache. Billing
    # only: the cache key leaves it out.
    cache_system: bool = False

    @classmethod
    def for_task(
        cls,
        task: str,
        *,
        model: str,
        max_tokens: int,
        system: str | None = None,
        history: Sequence[dict[str, Any]] = (),
        attachments: Sequence[dict[str, Any]] = (),
        **params: Any,
    ) -> Request:
        """The request that asks ``task`` after ``history`` (earlier turns); unknown ``params`` go to ``extra_body``.

        ``attachments`` (image and document blocks) go before the task's text, as the API advises.
        """
        typed = {k: v for k, v in params.items() if k in TYPED_PARAMS and v is not None}
        extra = {k: v for k, v in params.items() if k not in TYPED_PARAMS and v is not None}
        content: Any = [*attachments, {"type": "text", "text": task}] if attachments else task
        messages = [*history, {"role": "user", "content": content}]
        return cls(model, messages, max_tokens, system or None, typed, extra)

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AsyncAnthropic.messages.create``."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages, "max_tokens": self.max_tokens}
        if self.system:
            kwargs["system"] = self.system
            if self.cache_system:
                kwargs["system"] = [{"type": "text", "text": self.system, "cache_control": {"type": "ephemeral"}}]
        kwargs.update(self.params)
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        return kwargs

    @property
    def task(self) -> str:
        """Text of the last user message (for summaries and error messages)."""
        content = self.messages[-1]["content"] if self.messages else ""
        if isinstance(content, str):
            return content
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))


def body_bytes(kwargs: Mapping[str, Any]) -> int:
    """The size of the body ``kwargs`` (for ``messages.create``) make, as the compact UTF-8 JSON the SDK sends."""
    return len(json.dumps(_body(kwargs), ensure_ascii=False, separators=(",", ":"), default=str).encode())


def within(kwargs: Mapping[str, Any], limit: int) -> bool:
    """Whether the body ``kwargs`` make is surely within ``limit`` bytes, without writing it out.

    A bound, not a size: no character of a string takes more than six bytes
    in JSON (``\\u001f``), and nothing else more than six per character of its ``str()``.
    It costs a walk over the body's items, never a copy of an image's base64.
    """
    return _most_bytes(_body(kwargs)) <= limit


def _body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k != "extra_body"} | dict(kwargs.get("extra_body") or {})


def _most_bytes(value: Any) -> int:
    if isinstance(value, str):
        return 6 * len(value) + 2
    if isinstance(value, Mapping):
        return 2 + sum(_most_bytes(str(k)) + _most_bytes(v) + 2 for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 2 + sum(_most_bytes(v) + 1 for v in value)
    return 6 * len(str(value)) + 32  # a number, true, false, null, or what json.dumps writes with str()


def prompt_chars(body: Mapping[str, Any]) -> int:
    """Characters of prompt text: the system prompt and every text block of the messages."""
    return _text_length(body.get("system")) + sum(
        _text_length(m.get("content")) for m in body.get("messages") or () if isinstance(m, Mapping)
    )


def _text_length(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(b["text"]) for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str))
    return 0


def too_large(size: int, limit: int, what: str) -> str:
    """One line saying that a request of ``size`` bytes is over ``what``'s ``limit`` and was not sent."""
    return (
        f"The request is {size:,} bytes, over the {what} limit of {limit / 2**20:,.0f} MB ({limit:,} bytes), "
        "so nothing was sent; send fewer or smaller images and files, or a shorter task."
    )


class Thought(NamedTuple):
    """A thinking block: its text, or for a redacted one a placeholder and ``redacted``."""

    text: str
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer: the Messages API JSON, how long it took, and where it came from.

    ``origin`` names the endpoint that answered ("local" for the bundled
    offline server); ``synthetic`` is true when a local Messages API server,
    not Claude, wrote the answer.
    """

    message: dict[str, Any]
    latency: float
    request_id: str | None = None
    origin: str = ""
    synthetic: bool = False

    @property
    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.message.get("content", ()) if b.get("type") == "text")

    @property
    def model(self) -> str:
        return self.message.get("model", "")

    @property
    def input_tokens(self) -> int:
        return int(self.message.get("usage", {}).get("input_tokens") or 0)

    @property
    def output_tokens(self) -> int:
        return int(self.message.get("usage", {}).get("output_tokens") or 0)

    @property
    def stop_reason(self) -> str | None:
        return self.message.get("stop_reason")

    @property
    def thinking(self) -> list[Thought]:
        """The thinking blocks, in order (empty unless the request enabled thinking)."""
        thoughts = []
        for block in self.message.get("content", ()):
            if block.get("type") == "thinking":
                thoughts.append(Thought(block.get("thinking", "")))
            elif block.get("type") == "redacted_thinking":
                thoughts.append(Thought("", redacted=True))
        return thoughts
