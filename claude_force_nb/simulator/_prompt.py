"""A request's prompt as the API counts and caches it: blocks in the order tools, system, messages.

A token is about four characters of text; a tool definition counts as its
JSON, a tool call as its input, a tool result as its content. Images and
documents count as ``_media`` estimates them (an image by its pixels, a PDF
by its pages). A block carrying ``cache_control`` is a breakpoint:
the prefix up to and including it may be cached. A top-level
``cache_control`` marks the last block, as the API's automatic caching does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from . import _media

CHARS_PER_TOKEN = _media.CHARS_PER_TOKEN
MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")


class Block(NamedTuple):
    """One block of the prompt: its size, what a cached prefix must match, and its TTL if it is a breakpoint."""

    chars: int
    key: bytes  # canonical JSON, cache_control left out: marking a block does not change it
    ttl: str | None


def tokens(chars: int) -> int:
    return chars // CHARS_PER_TOKEN


def count(blocks: Iterable[Block]) -> int:
    """Tokens of the whole prompt, at least 1, as count_tokens reports them."""
    return max(1, tokens(sum(block.chars for block in blocks)))


def blocks(body: Mapping[str, Any]) -> list[Block]:
    """The prompt's blocks in cache order; ValueError, worded as the API's 400, for bad ``cache_control``."""
    found: list[Block] = []
    model = str(body.get("model"))
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            found.append(_block("tool", tool, _json_chars(_without_mark(tool))))
    system = body.get("system")
    if isinstance(system, str):
        if system:
            found.append(_block("system", system, len(system)))
    elif isinstance(system, list):
        found += [_block("system", block, _chars(block, model)) for block in system]
    for message in body["messages"]:
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            found.append(_block(role, content, len(content)))
        elif isinstance(content, list):
            found += [_block(role, block, _chars(block, model)) for block in content]
    automatic = _ttl(body.get("cache_control"), "cache_control")
    if automatic is not None and found and found[-1].ttl is None:
        found[-1] = found[-1]._replace(ttl=automatic)
    _check_breakpoints(found)
    return found


def _block(section: Any, block: Any, chars: int) -> Block:
    ttl = _ttl(block.get("cache_control"), "cache_control") if isinstance(block, dict) else None
    key = json.dumps([section, _without_mark(block)], sort_keys=True, separators=(",", ":"), default=str)
    return Block(chars, key.encode(), ttl)


def _ttl(mark: Any, where: str) -> str | None:
    if mark is None:
        return None
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise ValueError(f"{where}.type: Input should be 'ephemeral'.")
    ttl = mark.get("ttl", "5m")
    if ttl not in TTLS:
        raise ValueError(f"{where}.ttl: Input should be '5m' or '1h'.")
    return str(ttl)


def _check_breakpoints(found: list[Block]) -> None:
    ttls = [block.ttl for block in found if block.ttl is not None]
    if len(ttls) > MAX_BREAKPOINTS:
        limit = f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided."
        raise ValueError(f"{limit} Found {len(ttls)}.")
    # A prefix is written with the TTL of the breakpoint that ends it; a short-lived entry
    # inside a longer-lived one would be a hole, so the API wants the longer TTLs first.
    if "5m" in ttls and "1h" in ttls[ttls.index("5m") :]:
        raise ValueError("cache_control blocks with ttl='1h' must come before those with ttl='5m'.")


def _without_mark(block: Any) -> Any:
    return {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block


def _chars(block: Any, model: str) -> int:
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind in ("image", "document"):
        # Called on validated requests only, so the block is well formed.
        attachment = _media.attachment(block, model, "")
        return attachment.chars if attachment is not None else 0
    if isinstance(block.get("text"), str):
        return len(block["text"])
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        return len(block["thinking"])
    if kind == "tool_use":
        return _json_chars(block.get("input"))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return len(content)
        return sum(_chars(part, model) for part in content) if isinstance(content, list) else 0
    return 0


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))
