"""The Messages API's wire format: a message as JSON, or as the server-sent events of a stream."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._answers import Answer, chunks


def message_json(answer: Answer, *, message_id: str, model: str, service_tier: str = "standard") -> dict[str, Any]:
    """A complete non-streaming ``Message``; a batch's answers are on the "batch" tier."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(answer.blocks),
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": answer.usage(service_tier),
    }


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event: an ``event:`` line, a ``data:`` line, a blank line."""
    return b"event: " + event.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def stream_events(answer: Answer, *, message_id: str, model: str) -> Iterable[bytes]:
    """The event sequence of a streamed message, in the order the API sends it."""
    start_usage = dict(answer.usage(), output_tokens=1)
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    yield sse("message_start", {"type": "message_start", "message": message})
    for index, block in enumerate(answer.blocks):
        yield from _block_events(index, block)
    if not answer.blocks:
        yield sse("ping", {"type": "ping"})
    usage = answer.usage()
    del usage["cache_creation"], usage["service_tier"]  # message_delta carries only the cumulative counts
    delta = {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence}
    yield sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})


def _block_events(index: int, block: dict[str, Any]) -> Iterable[bytes]:
    kind = block["type"]
    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    if kind == "text":
        start, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": c} for c in chunks(block["text"])]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in chunks(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    else:  # redacted_thinking arrives whole
        start, deltas = block, []
    yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
    if index == 0:
        yield sse("ping", {"type": "ping"})
    for delta in deltas:
        yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    yield sse("content_block_stop", {"type": "content_block_stop", "index": index})


def error_json(kind: str, message: str, request_id: str | None, code: str | None = None) -> dict[str, Any]:
    """Anthropic's error body; a batch result's error has no request of its own, so no ``request_id``.

    ``code`` goes in ``error.details.error_code``, where the API says which recoverable case it is.
    """
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if code is not None:
        body["error"]["details"] = {"error_code": code}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def dumps(data: Any) -> bytes:
    """Compact JSON, as the API sends it."""
    return json.dumps(data, separators=(",", ":")).encode()
