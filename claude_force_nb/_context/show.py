"""Values as the model may see them: bounded, never an object's address, never a secret, whatever the object does.

Every call into the user's objects (``repr``, ``len``, a frame's methods)
goes through :func:`guarded`: it may raise, hang or return megabytes, and the
tool still answers, saying what failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .limits import TimeLimit, limited
from .secrets import redact

T = TypeVar("T")
# The most a tool result holds, and one value's repr within it.
MAX_CHARS = 6_000
MAX_REPR = 300
# How long one call into a user's object may take.
CALL_SECONDS = 2.0
# An object's address: it changes every run, and says nothing to the model.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OPAQUE = re.compile(r"^<.* at 0x[0-9a-fA-F]+>$", re.DOTALL)


class Failed(Exception):
    """A call into a user's object failed; its message says how, for the model."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


def guarded(what: str, function: Callable[[], T], seconds: float = CALL_SECONDS) -> T:
    """``function()``, or :class:`Failed` saying that ``what`` raised or hung."""
    try:
        return limited(function, seconds)
    except TimeLimit:
        raise Failed(f"{what} did not finish within {seconds:g} s", timed_out=True) from None
    except (Exception, SystemExit) as exc:
        raise Failed(f"{what} raised {type(exc).__name__}: {_first_line(exc)}") from None


def type_name(value: Any) -> str:
    """The value's type, qualified outside builtins: ``int``, ``pandas.DataFrame``; a class is ``class X``."""
    kind = type(value)  # never value.__class__, which an object may fake
    try:
        return f"class {_qualified(value)}" if issubclass(kind, type) else _qualified(kind)
    except Exception:  # a metaclass that lies about its own names
        return "object"


def _qualified(kind: type) -> str:
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", None) or kind.__name__
    if "<locals>" in name:  # a class made inside a function: its own name says enough
        name = kind.__name__
    if module in ("builtins", "__main__"):
        return name
    top = module.split(".")[0]
    public = {"pandas": "pandas", "numpy": "numpy", "polars": "polars"}.get(top)
    return f"{public}.{name}" if public else f"{module}.{name}"


def short_repr(value: Any, limit: int = MAX_REPR, slow: set[type] | None = None) -> str | None:
    """A repr of at most ``limit`` characters, or None when it is opaque (``<… at 0x…>``) or failed.

    A type whose repr ran out of time goes into ``slow``, and is not asked again: fifty proxies to a remote
    table must not take fifty time limits.
    """
    kind = type(value)
    if slow is not None and kind in slow:
        return None
    try:
        text = guarded("repr()", lambda: str.__str__(repr(value)))  # a str subclass's methods are the user's
    except Failed as exc:
        if exc.timed_out and slow is not None:
            slow.add(kind)
        return None
    if _OPAQUE.match(text.strip()):
        return None
    return cut(_ADDRESS.sub("", text), limit)


def repr_or_why(value: Any, limit: int = MAX_REPR) -> str:
    """A bounded repr, or why there is none."""
    try:
        text = guarded("repr()", lambda: str.__str__(repr(value)))
    except Failed as exc:
        return f"(no value shown: {exc})"
    if _OPAQUE.match(text.strip()):
        return "(no value shown: its repr only names its type and address)"
    return cut(_ADDRESS.sub("", text), limit)


def cut(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` within ``limit`` characters, saying how much was cut; secrets are redacted first, so a cut
    never leaves part of one."""
    text = redact(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit:,} more characters cut]"


def final(text: str, secrets: Iterable[str] = ()) -> str:
    """What a tool returns: secrets (and the texts in ``secrets``) redacted, addresses dropped, within
    :data:`MAX_CHARS`."""
    return cut(redact(_ADDRESS.sub("", text), secrets), MAX_CHARS)


def _first_line(exc: BaseException) -> str:
    try:
        text = str.__str__(limited(lambda: str(exc), CALL_SECONDS))  # an exception's message is user code too
    except (Exception, SystemExit):
        return "(its message could not be read)"
    lines = text.strip().splitlines()
    return cut(lines[0], 200) if lines else ""
