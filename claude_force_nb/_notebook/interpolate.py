"""Substitution of names from the user namespace into a cell's text.

A placeholder is a name followed by any chain of ``.attr``, ``[int]``,
``['key']`` or ``["key"]``, in single braces: ``{df}``, ``{cfg.model}``,
``{rows[-1]}``, ``{Out[3]}``, ``{a.b[2]['k'].c}``. It becomes the value's
text: ``str(value)``, except that tables and arrays go whole (:mod:`.values`).
``{{expr}}`` is the escape and gives a literal ``{expr}``.

Every other brace is left exactly as written, so code, JSON, CSS and
templates pass through. Also left alone, because there they are not prose:
braces glued to other braces (``{{{x}}}``, ``{x}}``), braces after ``$``
(shell ``${HOME}``, ``${{matrix.os}}``) or ``^`` (``x^{n}``), and the brace
arguments of a LaTeX command (``\\frac{a}{b}``, ``\\hat{x}``).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .values import DEFAULT_DATA_LIMIT, as_text, is_image

__all__ = ["Interpolation", "interpolate"]

_NAME = r"[^\W\d]\w*"
_EXPR = _NAME + r"""(?:\.[^\W\d]\w*|\[-?\d+\]|\['[^'\\\n]*'\]|\["[^"\\\n]*"\])*"""
# Brace arguments of a LaTeX command, nested up to three levels deep. Each
# alternative starts with a distinct character, so matching stays linear.
_GROUP = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"
# Two letters at least, so a Python "\n{name}" is still a placeholder.
_LATEX = r"\\[A-Za-z]{2,}\*?(?:\[[^\[\]{}\n]*\]|" + _GROUP + r")*"
# The lookbehinds sit after the first brace so that they run only at a "{",
# not at every character of the cell (twice as fast on code-heavy cells).
_TOKEN = re.compile(
    "(?P<latex>" + _LATEX + ")"
    r"|\{(?<![{$^]\{)\{(?P<escaped>" + _EXPR + r")\}\}(?!\})"
    r"|\{(?<![{$^]\{)(?P<expr>" + _EXPR + r")\}(?!\})"
)
# The expression already matched _EXPR, so this only has to split it up.
_ROOT = re.compile(_NAME)
_STEP = re.compile(r"""\.(?P<attr>\w+)|\[(?P<index>-?\d+)\]|\[(?P<q>['"])(?P<key>.*?)(?P=q)\]""")

_TAG = "data"
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Interpolation:
    """The substituted text and which placeholders were found or not."""

    text: str
    missing: tuple[str, ...] = ()  # left verbatim, in order of first use
    used: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # values cut to the limit, or left out because they have no text form
    images: tuple[tuple[str, Any], ...] = ()  # (placeholder, image) for each image placeholder, in order


def interpolate(
    text: str, namespace: Mapping[str, Any], *, fence: bool = False, limit: int = DEFAULT_DATA_LIMIT
) -> Interpolation:
    """Replace placeholders in ``text`` with values from ``namespace``; never raises.

    A placeholder whose name is undefined, or whose attribute, index or
    ``str()`` fails, stays verbatim and is listed in ``missing``. With
    ``fence=True`` each value is wrapped in a ``<data name="...">`` block.
    """
    if "{" not in text:
        return Interpolation(text)
    missing: dict[str, None] = {}  # dicts as ordered sets
    used: dict[str, None] = {}
    notes: dict[str, None] = {}
    images: dict[str, Any] = {}

    def replace(match: re.Match[str]) -> str:
        if match["escaped"] is not None:
            return "{" + match["escaped"] + "}"
        expr = match["expr"]
        if expr is None:
            return match.group()
        value = _lookup(expr, namespace)
        if value is _MISSING:
            missing[expr] = None
            return match.group()
        if is_image(value):
            used[expr] = None
            images.setdefault(expr, value)
            return f"[image: {expr}]"
        try:
            found = as_text(value, expr, limit)
        except Exception:  # a value whose str() fails costs its placeholder, not the cell
            missing[expr] = None
            return match.group()
        if found.note is not None:
            notes[found.note] = None
        if found.text is None:
            return match.group()
        used[expr] = None
        return _fence(expr, found.text) if fence else found.text

    substituted = _TOKEN.sub(replace, text)
    return Interpolation(substituted, tuple(missing), tuple(used), tuple(notes), tuple(images.items()))


def _lookup(expr: str, namespace: Mapping[str, Any]) -> Any:
    """The value ``expr`` names, or ``_MISSING`` if any step fails."""
    root = _ROOT.match(expr)
    assert root is not None  # _TOKEN only hands over matching expressions
    # Objects in a notebook can fail in any way on getattr, [] or str();
    # a bad value must cost one placeholder, not the whole cell.
    try:
        # ``in`` first: a defaultdict namespace must not grow a key.
        if root.group() not in namespace:
            return _MISSING
        value = namespace[root.group()]
        for step in _STEP.finditer(expr, root.end()):
            if step["attr"] is not None:
                value = getattr(value, step["attr"])
            elif step["index"] is not None:
                value = value[int(step["index"])]
            else:
                value = value[step["key"]]
        return value
    except Exception:
        return _MISSING


def _fence(expr: str, value: str) -> str:
    """``value`` in a data block whose closing tag does not occur inside it."""
    tag, attempt = _TAG, 0
    # The tag is derived from the value, not random, so the same cell gives
    # the same prompt (and the same cache key) every time.
    while _closes(value, tag):
        attempt += 1
        digest = hashlib.sha256(f"{attempt}:{value}".encode("utf-8", "surrogatepass")).hexdigest()
        tag = f"{_TAG}-{digest[:8]}"
    return f'<{tag} name="{html.escape(expr)}">\n{value}\n</{tag}>'


def _closes(value: str, tag: str) -> bool:
    # Looser than XML on purpose: a model may read "< / DATA" as a close too.
    return re.search(r"<\s*/\s*" + re.escape(tag), value, re.IGNORECASE) is not None
