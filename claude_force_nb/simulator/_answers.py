"""Deterministic synthetic answers in the Messages API wire format.

Everything here is pure: a request body goes in, an :class:`Answer` (its
content blocks, stop reason and usage) comes out. The server adds ids,
latency and faults around it. An answer is a tool call, JSON for a
requested schema, or text that names the task, says what the request
carried (images, documents) and, in a conversation, which turn it answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _conversation, _explore, _grading, _instances, _media, _prompt, _schema, _thinking, _tools
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
_PREVIOUS_PREVIEW = 32
_WORDS_PER_DELTA = 4

_OPENERS = (
    'Taking "{task}" at face value, the first step is to pin down what a good result looks like.',
    'For "{task}", start by listing the inputs and the one output that matters most.',
    'Reading "{task}" closely, the core question is narrower than it first appears.',
    'The request "{task}" splits naturally into a small number of independent parts.',
)
_FOLLOW_UPS = (
    'Coming back to "{previous}", the follow-up "{task}" narrows what matters.',
    'After "{previous}", the question "{task}" builds on what was already settled.',
    'The follow-up "{task}" takes "{previous}" one step further.',
    'With "{previous}" covered, "{task}" asks for the next layer of detail.',
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


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _preview(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "\u2026"


def _digest(body: Mapping[str, Any]) -> bytes:
    hashed = {k: _conversation.unmarked(body.get(k)) for k in _HASHED}
    canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """Roughly chars/4 of the tools, system prompt and messages, plus images and documents, at least 1."""
    return _prompt.count(_prompt.blocks(body))


def answer_text(body: Mapping[str, Any]) -> str:
    """The full, untruncated text answer; the same body always gives the same text."""
    digest = _digest(body)
    tasks = _conversation.tasks(body["messages"])
    task = _preview(tasks[-1] if tasks else "", _TASK_PREVIEW) or "this request"
    reports = _tools.reports(body)
    sentences: tuple[str, ...]
    if _explore.offered(body.get("tools") or ()):
        sentences = (_explore.answer(tasks[-1] if tasks else "", [(r.name, r.full) for r in reports]),)
    elif reports:
        said = "; ".join(_reported(report) for report in reports)
        sentences = (
            f'Using what the tools returned for "{task}": {said}.',
            _CLOSERS[digest[3] % len(_CLOSERS)],
        )
    else:
        if len(tasks) > 1:
            previous = _preview(tasks[-2], _PREVIOUS_PREVIEW) or "the previous turn"
            opener = _FOLLOW_UPS[digest[0] % len(_FOLLOW_UPS)].format(task=task, previous=previous)
        else:
            opener = _OPENERS[digest[0] % len(_OPENERS)].format(task=task)
        sentences = (
            opener,
            _MIDDLES[digest[1] % len(_MIDDLES)],
            _MIDDLES[(digest[1] + 1 + digest[2] % (len(_MIDDLES) - 1)) % len(_MIDDLES)],
            _CLOSERS[digest[3] % len(_CLOSERS)],
        )
    system = _text_of(body.get("system"))
    origin = f'system "{_preview(system, _SYSTEM_PREVIEW)}"' if system.strip() else "no system prompt"
    notes = [f"model {body['model']}", origin]
    received = _media.describe(_media.attachments(body))
    if received:
        notes.append(f"received {received}")
    if len(tasks) > 1:
        notes.append(f"turn {len(tasks)}")
    provenance = " \u00b7 ".join(notes)
    # The marker leads and the task follows at once, so the first line (what a
    # results table shows) tells answers apart; provenance closes the answer.
    return f"[synthetic] {' '.join(sentences)}\n({provenance})"


def _reported(report: _tools.Report) -> str:
    said = f'"{report.text}"' if report.text else "nothing"
    return f"{report.name} failed with {said}" if report.failed else f"{report.name} returned {said}"


def structured_text(body: Mapping[str, Any], schema: Mapping[str, Any], *, invalid: bool = False) -> str:
    """The answer as JSON that follows ``schema``, or (``invalid``) deliberately does not."""
    tasks = _conversation.tasks(body["messages"])
    value = _instances.generate(schema, seed=_digest(body).hex(), topic=tasks[-1] if tasks else "")
    if invalid:
        value = _instances.broken(value, _instances.resolved(schema))
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Shape:
    """How a test wants the next answer to be.

    A stop reason; thinking blocks, "plain" or "redacted"; ``invalid_json``: JSON (or tool input) that
    breaks the request's schema.
    """

    stop_reason: str | None = None
    thinking: str | None = None
    invalid_json: bool = False

    def __post_init__(self) -> None:
        if self.stop_reason not in (None, *STOP_REASONS):
            raise ValueError(f"Unknown stop reason {self.stop_reason!r}; use one of {', '.join(STOP_REASONS)}.")
        if self.thinking not in (None, "plain", "redacted"):
            raise ValueError(f"thinking must be 'plain' or 'redacted', not {self.thinking!r}.")
        if not isinstance(self.invalid_json, bool):
            raise ValueError(f"invalid_json must be True or False, not {self.invalid_json!r}.")


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


def make_answer(
    body: Mapping[str, Any],
    shape: Shape | None = None,
    cached: CacheUsage = NOT_CACHED,
    tool_turns: int = _tools.DEFAULT_TOOL_TURNS,
) -> Answer:
    """Generate, then stop at whichever comes first: a stop sequence or ``max_tokens``; ``shape`` overrides.

    The answer is a tool call (``_tools.plan``, with ``tool_turns`` rounds per task), JSON for a
    requested schema, or text. ``cached`` is what the prompt cache read and wrote; it changes the
    usage, never the answer.
    """
    shape = shape or Shape()
    call = _tools.plan(body, tool_turns)
    schema = _schema.output_schema(body)
    if call is not None:
        text = call.preamble
        if shape.invalid_json:
            broken = _instances.broken(call.block["input"], _instances.resolved(call.schema))
            # Tool input is always an object on the wire; a schema with nothing to break is left as it is.
            if isinstance(broken, dict):
                call = call._replace(block={**call.block, "input": broken})
    elif schema is not None and _grading.is_grading(schema) and not shape.invalid_json:
        text = _grading.graded_text(body)
    elif schema is not None:
        text = structured_text(body, schema, invalid=shape.invalid_json)
    else:
        text = answer_text(body)
    stop_reason, stop_sequence = ("tool_use" if call is not None else "end_turn"), None
    hits = [(text.find(s), s) for s in body.get("stop_sequences") or () if s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, stop_reason, call = text[:index], "stop_sequence", None
    words = _WORD.findall(text)
    called = len(_WORD.findall(json.dumps(call.block["input"]))) if call is not None else 0
    max_tokens = body["max_tokens"]
    if len(words) + called > max_tokens:
        # Out of tokens before the call was complete: no call, as on the API.
        words, call, called = words[:max_tokens], None, 0
        text, stop_reason, stop_sequence = "".join(words).rstrip(), "max_tokens", None
    blocks: list[dict[str, Any]] = _thinking.blocks(_conversation.unmarked(body), shape.thinking)
    if shape.stop_reason in ("max_tokens", "pause_turn", "model_context_window_exceeded", "stop_sequence"):
        # Cut where a long answer would be: halfway.
        words, call, called = words[: max(1, len(words) // 2)], None, 0
        text, stop_reason, stop_sequence = "".join(words).rstrip(), shape.stop_reason, None
        if stop_reason == "stop_sequence":
            stop_sequence = next(iter(body.get("stop_sequences") or ()), "STOP")
    elif shape.stop_reason == "refusal":
        blocks, text, stop_reason, stop_sequence, words, call, called = [], "", "refusal", None, [], None, 0
    elif shape.stop_reason == "tool_use":
        if call is None:
            text, call = "I will look that up first.", _fallback_call(body)
        words, stop_reason, stop_sequence = _WORD.findall(text), "tool_use", None
    if text:
        blocks.append({"type": "text", "text": text})
    if call is not None:
        blocks.append(call.block)
    thought = sum(len(_WORD.findall(b.get("thinking", ""))) for b in blocks)
    # The API never reports zero output tokens, even for an empty answer.
    uncached = count_input_tokens(body) - cached.read - cached.written
    return Answer(tuple(blocks), stop_reason, stop_sequence, uncached, max(1, len(words) + thought + called), cached)


def _fallback_call(body: Mapping[str, Any]) -> _tools.ToolCall:
    # A test asked for a tool call where the request offers no tool: call a made-up one.
    tasks = _conversation.tasks(body["messages"])
    task = _preview(tasks[-1] if tasks else "", _TASK_PREVIEW)
    tool_id = "toolu_" + hashlib.sha256(task.encode()).hexdigest()[:24]
    block = {"type": "tool_use", "id": tool_id, "name": "lookup", "input": {"query": task}}
    return _tools.ToolCall("", block, {"type": "object"})
