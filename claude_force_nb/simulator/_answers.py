"""Deterministic synthetic answers in the Messages API wire format.

Everything here is pure: a request body goes in, JSON-ready dicts and SSE
bytes come out. The server adds ids, latency and faults around it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._models import KNOWN_MODELS, REJECTS_SAMPLING
from . import _prompt
from ._caching import NOT_CACHED, CacheUsage

# Parameters that change what a real model would say. ``max_tokens`` and
# ``stop_sequences`` are left out on purpose: they only cut the answer short,
# so a truncated answer is a prefix of the full one, as at temperature 0.
_HASHED = ("model", "system", "messages", "temperature", "top_p", "top_k", "tools", "tool_choice")

STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
)

# One "token" is a word with its trailing whitespace; joining them restores the text.
_WORD = re.compile(r"\S+\s*")

_SYSTEM_PREVIEW = 40
_TASK_PREVIEW = 48
_WORDS_PER_DELTA = 4

_OPENERS = (
    'Taking "{task}" at face value, the first step is to pin down what a good result looks like.',
    'For "{task}", start by listing the inputs and the one output that matters most.',
    'Reading "{task}" closely, the core question is narrower than it first appears.',
    'The request "{task}" splits naturally into a small number of independent parts.',
)
_MIDDLES = (
    "Each part can then be checked on its own before the pieces are combined.",
    "The riskiest assumption should be tested first, since everything else depends on it.",
    "A short worked example usually exposes the edge cases faster than a long plan.",
    "Naming the constraints explicitly keeps the answer honest and easy to review.",
)
_CLOSERS = (
    "A real model would add detail here; this text only marks where it would go.",
    "That is the outline a real answer would fill in with specifics.",
    "Swap in an API key to replace this placeholder with a genuine response.",
    "The same request always yields this same text, which keeps notebooks reproducible.",
)


class InvalidRequest(ValueError):
    """A request body the real API would reject with 400 ``invalid_request_error``."""


class UnknownModel(LookupError):
    """A model the API does not serve: 404 ``not_found_error``."""


def validate(body: Any, *, count_only: bool = False) -> None:
    """Raise :class:`InvalidRequest` where the API would return 400."""
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string).")
    if model not in KNOWN_MODELS:
        raise UnknownModel(f"model: {model}")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
        ):
            raise InvalidRequest(f"{name}: Input should be less than or equal to 1 and greater than or equal to 0.")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidRequest("top_k: Input should be a non-negative integer.")
    _check_sampling(model, body)
    if not count_only:
        max_tokens = body.get("max_tokens")
        # bool is an int subclass; the API rejects true/false here.
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise InvalidRequest("max_tokens: Field required (an integer).")
        if max_tokens < 1:
            raise InvalidRequest("max_tokens: must be greater than or equal to 1.")
        if not isinstance(body.get("stream", False), bool):
            raise InvalidRequest("stream: Input should be a valid boolean.")
        stops = body.get("stop_sequences", [])
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise InvalidRequest("stop_sequences: Input should be a list of non-empty strings.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'.")
        if not _is_content(message.get("content")):
            raise InvalidRequest(f"messages.{i}.content: Input should be a string or a list of content blocks.")
    system = body.get("system")
    if system is not None and not _is_system(system):
        raise InvalidRequest("system: Input should be a string or a list of text blocks.")
    try:
        _prompt.blocks(body)
    except ValueError as exc:  # cache_control: a bad mark, or too many
        raise InvalidRequest(str(exc)) from exc


def _check_sampling(model: str, body: Mapping[str, Any]) -> None:
    # The API's own rules: the newest models take no sampling parameters at
    # all, the others one of temperature and top_p.
    if model in REJECTS_SAMPLING:
        for name in ("temperature", "top_p", "top_k"):
            if body.get(name) is not None:
                raise InvalidRequest(f"`{name}` is deprecated for this model.")
    elif body.get("temperature") is not None and body.get("top_p") is not None:
        raise InvalidRequest("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")


def _is_system(system: Any) -> bool:
    if isinstance(system, str):
        return True
    return isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in system
    )


def _is_content(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in content)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _unmarked(value: Any) -> Any:
    # cache_control decides what is cached, never what the model says.
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    return value


def _preview(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "\u2026"


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Roughly chars/4 of the tools, system prompt and messages, at least 1; cached or not."""
    return _prompt.count(_prompt.blocks(body))


def answer_text(body: Mapping[str, Any]) -> str:
    """The full, untruncated answer; the same body always gives the same text."""
    hashed = {k: _unmarked(body.get(k)) for k in _HASHED}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).digest()
    system = _text_of(body.get("system"))
    origin = f'system "{_preview(system, _SYSTEM_PREVIEW)}"' if system.strip() else "no system prompt"
    user_turns = [m for m in body["messages"] if m.get("role") == "user"] or body["messages"]
    task = _preview(_text_of(user_turns[-1].get("content")), _TASK_PREVIEW) or "this request"
    sentences = (
        _OPENERS[digest[0] % len(_OPENERS)].format(task=task),
        _MIDDLES[digest[1] % len(_MIDDLES)],
        _MIDDLES[(digest[1] + 1 + digest[2] % (len(_MIDDLES) - 1)) % len(_MIDDLES)],
        _CLOSERS[digest[3] % len(_CLOSERS)],
    )
    # The marker leads and the task follows at once, so the first line (what a
    # results table shows) tells answers apart; provenance closes the answer.
    return f"[synthetic] {' '.join(sentences)}\n(model {body['model']} \u00b7 {origin})"


@dataclass(frozen=True, slots=True)
class Shape:
    """How a test wants the next answer to end: a stop reason; thinking blocks, "plain" or "redacted"."""

    stop_reason: str | None = None
    thinking: str | None = None

    def __post_init__(self) -> None:
        if self.stop_reason not in (None, *STOP_REASONS):
            raise ValueError(f"Unknown stop reason {self.stop_reason!r}; use one of {', '.join(STOP_REASONS)}.")
        if self.thinking not in (None, "plain", "redacted"):
            raise ValueError(f"thinking must be 'plain' or 'redacted', not {self.thinking!r}.")


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model "generated": its content blocks, why it stopped and what it cost."""

    blocks: tuple[dict[str, Any], ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int  # what the prompt cache neither read nor wrote
    output_tokens: int
    cached: CacheUsage = NOT_CACHED

    @property
    def text(self) -> str:
        return "".join(block["text"] for block in self.blocks if block["type"] == "text")

    def usage(self, service_tier: str = "standard") -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cached.written,
            "cache_read_input_tokens": self.cached.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cached.written_5m,
                "ephemeral_1h_input_tokens": self.cached.written_1h,
            },
            "service_tier": service_tier,
        }


def chunks(text: str) -> list[str]:
    """``text`` split into small deltas, as a stream would deliver it."""
    words = _WORD.findall(text)
    if not words:
        return [text] if text else []
    return ["".join(words[i : i + _WORDS_PER_DELTA]) for i in range(0, len(words), _WORDS_PER_DELTA)]


def make_answer(body: Mapping[str, Any], shape: Shape | None = None, cached: CacheUsage = NOT_CACHED) -> Answer:
    """Generate, then stop at whichever comes first: a stop sequence or ``max_tokens``; ``shape`` overrides.

    ``cached`` is what the prompt cache read and wrote; it changes the usage, never the text.
    """
    shape = shape or Shape()
    text = answer_text(body)
    stop_reason, stop_sequence = "end_turn", None
    hits = [(text.find(s), s) for s in body.get("stop_sequences") or () if s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, stop_reason = text[:index], "stop_sequence"
    words = _WORD.findall(text)
    max_tokens = body["max_tokens"]
    if len(words) > max_tokens:
        text, stop_reason, stop_sequence = "".join(words[:max_tokens]).rstrip(), "max_tokens", None
        words = words[:max_tokens]
    blocks: list[dict[str, Any]] = _thinking(body, shape)
    if shape.stop_reason in ("max_tokens", "pause_turn", "model_context_window_exceeded", "stop_sequence"):
        # Cut where a long answer would be: halfway.
        words = words[: max(1, len(words) // 2)]
        text, stop_reason, stop_sequence = "".join(words).rstrip(), shape.stop_reason, None
        if stop_reason == "stop_sequence":
            stop_sequence = next(iter(body.get("stop_sequences") or ()), "STOP")
    elif shape.stop_reason == "refusal":
        blocks, text, stop_reason, stop_sequence, words = [], "", "refusal", None, []
    elif shape.stop_reason == "tool_use":
        text, stop_reason, stop_sequence = "I will look that up first.", "tool_use", None
    if text:
        blocks.append({"type": "text", "text": text})
    if stop_reason == "tool_use":
        blocks.append(_tool_use(body))
    thought = sum(len(_WORD.findall(b.get("thinking", ""))) for b in blocks)
    # The API never reports zero output tokens, even for an empty answer.
    uncached = count_input_tokens(body) - cached.read - cached.written
    return Answer(tuple(blocks), stop_reason, stop_sequence, uncached, max(1, len(words) + thought), cached)


def _thinking(body: Mapping[str, Any], shape: Shape) -> list[dict[str, Any]]:
    enabled = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in ("enabled", "adaptive")
    if shape.thinking == "redacted":
        messages = _unmarked(body.get("messages"))
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()
        return [{"type": "redacted_thinking", "data": "synthetic-redacted-" + digest[:32]}]
    if not (enabled or shape.thinking == "plain"):
        return []
    task = _preview(_text_of(body["messages"][-1].get("content")), _TASK_PREVIEW)
    thinking = f"[synthetic thinking] The task is \u201c{task}\u201d. Outline the parts, then answer each in turn."
    signature = hashlib.sha256(thinking.encode()).hexdigest()
    return [{"type": "thinking", "thinking": thinking, "signature": "synthetic-" + signature[:32]}]


def _tool_use(body: Mapping[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or [{"name": "lookup"}]
    name = tools[0].get("name", "lookup") if isinstance(tools[0], dict) else "lookup"
    task = _preview(_text_of(body["messages"][-1].get("content")), _TASK_PREVIEW)
    tool_id = "toolu_" + hashlib.sha256(task.encode()).hexdigest()[:24]
    return {"type": "tool_use", "id": tool_id, "name": name, "input": {"query": task}}
