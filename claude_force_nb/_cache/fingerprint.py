"""A stable key for a request: everything that determines the answer, hashed.

Values are fed to one BLAKE2b object as a type-tagged, length-prefixed stream
rather than as canonical JSON: a 10 KB prompt is hashed as it is instead of
being escaped and copied first, and tags keep ``[1]``, ``"1"``, ``1``, ``1.5``
and ``True`` apart. Integral floats are written as integers, so ``0`` and
``0.0`` (which the API treats alike) give the same key. Prompt caching's
``cache_control`` marks on content blocks, tools and the request are left
out: they change what a call is billed, not what it answers (a property of
that name in a tool's schema or input is data, and stays). BLAKE2b rather than
SHA-256 because it is markedly faster on CPUs without SHA extensions; this
is an identity, not a signature (rows are signed with HMAC-SHA256 in the store).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from hashlib import blake2b
from typing import Any

from .._request import Request

# Bump when the encoding or the set of covered fields changes: old rows then
# simply stop matching instead of answering the wrong request.
KEY_VERSION = 2

# Request.params entries that change how a call is billed or routed, not what
# it answers.
IGNORED_PARAMS = frozenset({"metadata", "service_tier"})

# Prompt caching's mark on a block, a tool or the request: left out of keys.
_BILLING_ONLY = "cache_control"

_HEADER = b"claude-force-nb/key/%d\x00" % KEY_VERSION
_SHORT = 64
_SHORT_CACHE_SIZE = 4096
_short: dict[str, bytes] = {}

# Where encoded bytes go: a hash object's update(), or list.append when sorting keys.
_Sink = Callable[[bytes], object]


def fingerprint(request: Request) -> str:
    """Hex key for ``request``; equal for equivalent requests, in any process."""
    h = blake2b(_HEADER, digest_size=32)
    add = h.update
    _feed(add, request.model)
    _feed(add, request.max_tokens)
    # to_kwargs() leaves out an empty system prompt, so "" and None are one request.
    _feed(add, request.system or None)
    _feed(add, _unmarked_messages(request.messages))
    params = request.params
    if params and not IGNORED_PARAMS.isdisjoint(params):
        params = {k: v for k, v in params.items() if k not in IGNORED_PARAMS}
    if params.get("tools"):
        params = {**params, "tools": _unmarked(params["tools"])}
    _feed(add, params)
    extra = request.extra_body
    if _BILLING_ONLY in extra:  # the request-wide mark (automatic prompt caching)
        extra = {k: v for k, v in extra.items() if k != _BILLING_ONLY}
    _feed(add, extra)
    return h.hexdigest()


def _unmarked_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` without prompt-cache marks on their content blocks (copied only when there are some)."""
    if not any(isinstance(m.get("content"), list) and _marked(m["content"]) for m in messages):
        return messages
    return [{**m, "content": _unmarked(m["content"])} if isinstance(m.get("content"), list) else m for m in messages]


def _marked(blocks: list[Any]) -> bool:
    return any(isinstance(block, dict) and _BILLING_ONLY in block for block in blocks)


def _unmarked(blocks: Any) -> Any:
    """A list of blocks (or tool definitions) without their own ``cache_control``; anything inside is kept."""
    if not isinstance(blocks, list) or not _marked(blocks):
        return blocks
    return [
        {k: v for k, v in block.items() if k != _BILLING_ONLY} if isinstance(block, dict) else block for block in blocks
    ]


def _feed(add: _Sink, value: Any) -> None:
    # Exact type checks: the common case, and much cheaper than isinstance
    # chains. They also keep True off the int branch, so True and 1 differ.
    t = type(value)
    if t is str:
        if len(value) <= _SHORT:
            encoded = _short.get(value)
            if encoded is None:
                encoded = _encode_short(value)
            add(encoded)
        else:
            data = value.encode("utf-8", "surrogatepass")
            add(b"s%d:" % len(data))
            add(data)
    elif t is dict:
        try:
            keys = sorted(value)
        except TypeError:
            keys = _sorted_mixed(value)
        add(b"d%d:" % len(keys))
        for k in keys:
            _feed(add, k)
            _feed(add, value[k])
    elif t is list or t is tuple:
        add(b"l%d:" % len(value))
        for item in value:
            _feed(add, item)
    elif t is int:
        add(b"i%d;" % value)
    elif value is None:
        add(b"N")
    elif t is bool:
        add(b"T" if value else b"F")
    elif t is float:
        if value.is_integer():
            add(b"i%d;" % int(value))
        else:
            add(b"f%s;" % repr(value).encode())
    else:
        _feed_other(add, value)


def _encode_short(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    encoded = b"s%d:%s" % (len(data), data)
    # Field names, roles and model ids repeat in every request; remembering
    # their encodings saves most of the per-value work. Bounded, so unique
    # short strings (user text) cannot grow it without limit.
    if len(_short) < _SHORT_CACHE_SIZE:
        _short[value] = encoded
    return encoded


def _feed_other(add: _Sink, value: Any) -> None:
    """Subclasses of the JSON types, bytes, and SDK models."""
    if isinstance(value, bool):
        _feed(add, bool(value))
    elif isinstance(value, str):
        _feed(add, str(value))
    elif isinstance(value, int):
        _feed(add, int(value))
    elif isinstance(value, float):
        _feed(add, float(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        add(b"b%d:" % len(data))
        add(data)
    elif isinstance(value, Mapping):
        _feed(add, dict(value))
    elif isinstance(value, (list, tuple)):
        _feed(add, list(value))
    elif hasattr(value, "model_dump"):
        # SDK param objects (pydantic models) key like the JSON they send.
        _feed(add, value.model_dump(mode="json", exclude_unset=True))
    else:
        raise TypeError(f"Cannot build a cache key from a {type(value).__name__} value; use JSON types.")


def _sorted_mixed(mapping: dict) -> list:
    """Keys of mixed types do not order; order them by their tagged encoding."""

    def encoded(k: Any) -> bytes:
        parts: list[bytes] = []
        _feed(parts.append, k)
        return b"".join(parts)

    return sorted(mapping, key=encoded)
