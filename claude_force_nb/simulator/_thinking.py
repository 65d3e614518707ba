"""Thinking and effort: the API's rules per model, and the synthetic thinking blocks.

``{"type": "enabled", "budget_tokens": N}`` needs 1024 <= N < max_tokens
and a model that still takes manual budgets; ``{"type": "adaptive"}`` a
model from 4.6 on. Thinking rules out forced tool use and sampling other
than the defaults (temperature 1, top_p from 0.95, no top_k).
``output_config.effort`` takes the levels the model offers. Effort is
checked and otherwise ignored: a synthetic answer has no depth to trade, so
the text stays the same at every level. A request without ``thinking`` gets
no thinking blocks, even from models that would think by default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from . import _capabilities, _conversation

MIN_BUDGET = 1024
_PREVIEW = 48
_SEE = "See the extended thinking guide's feature compatibility notes."


def enabled(body: Mapping[str, Any]) -> bool:
    """Whether the request asks the model to think."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def check(body: Mapping[str, Any], *, count_only: bool = False) -> None:
    """ValueError, worded as the API's 400, for thinking or effort this model or request cannot have."""
    model = str(body["model"])
    _check_effort(model, body.get("output_config"))
    thinking = body.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in _capabilities.THINKING_TYPES:
        raise ValueError(f"thinking.type: Input should be {_quoted(_capabilities.THINKING_TYPES)}.")
    if thinking.get("display") not in (None, "summarized", "omitted"):
        raise ValueError(f"thinking.{kind}.display: Input should be 'summarized' or 'omitted'.")
    if kind == "enabled":
        if model in _capabilities.ADAPTIVE_ONLY:
            raise ValueError(
                '"thinking.type.enabled" is not supported for this model. '
                'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
            )
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < MIN_BUDGET:
            raise ValueError(f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}.")
        if not count_only and budget >= body["max_tokens"]:
            raise ValueError(f"`max_tokens` must be greater than `thinking.budget_tokens`. {_SEE}")
    elif kind in ("adaptive", "between_tools") and model in _capabilities.PRE_ADAPTIVE:
        raise ValueError(
            f'"thinking.type.{kind}" is not supported for this model. '
            'Use "thinking.type.enabled" with "budget_tokens" to control thinking behavior.'
        )
    elif kind == "disabled" and model in _capabilities.ALWAYS_THINKS:
        raise ValueError('"thinking.type.disabled" is not supported for this model; it always thinks adaptively.')
    if enabled(body):
        _check_compatible(body)


def _check_effort(model: str, config: Any) -> None:
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort is None:
        return
    if effort not in _capabilities.EFFORTS:
        raise ValueError(f"output_config.effort: Input should be {_quoted(_capabilities.EFFORTS)}.")
    offered = _capabilities.efforts(model)
    if not offered:
        raise ValueError("output_config.effort: This model does not support the effort parameter.")
    if effort not in offered:
        raise ValueError(f"output_config.effort: '{effort}' is not supported by this model; use {_quoted(offered)}.")


def _check_compatible(body: Mapping[str, Any]) -> None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise ValueError(f"Thinking may not be enabled when tool_choice forces tool use. {_SEE}")
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if temperature is not None and temperature != 1:
        raise ValueError(f"`temperature` may only be set to 1 when thinking is enabled. {_SEE}")
    if top_p is not None and top_p < 0.95:
        raise ValueError(f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. {_SEE}")
    if body.get("top_k") is not None:
        raise ValueError(f"`top_k` may not be set when thinking is enabled. {_SEE}")


def blocks(body: Mapping[str, Any], shape_thinking: str | None) -> list[dict[str, Any]]:
    """The thinking blocks an answer starts with: as the request asks, or as a test's shape forces."""
    if shape_thinking == "redacted":
        messages = json.dumps(body.get("messages"), sort_keys=True, default=str)
        return [{"type": "redacted_thinking", "data": "synthetic-redacted-" + _digest(messages)}]
    if not (enabled(body) or shape_thinking == "plain"):
        return []
    tasks = _conversation.tasks(body["messages"]) or [""]
    flat = " ".join(tasks[-1].split())
    task = flat if len(flat) <= _PREVIEW else flat[:_PREVIEW].rstrip() + "\u2026"
    thinking = f"[synthetic thinking] The task is \u201c{task}\u201d. Outline the parts, then answer each in turn."
    signature = "synthetic-" + _digest(thinking)
    display = (body.get("thinking") or {}).get("display")
    if display is None:
        hidden = body.get("model") in _capabilities.OMITS_THINKING and shape_thinking != "plain"
        display = "omitted" if hidden else "summarized"
    # Omitted thinking still comes as a block, empty but signed, so a conversation can hand it back.
    return [{"type": "thinking", "thinking": "" if display == "omitted" else thinking, "signature": signature}]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _quoted(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
