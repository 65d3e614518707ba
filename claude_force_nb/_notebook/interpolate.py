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

from .values import DEFAULT_DATA_LIMIT, Text, as_text

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


@dataclass(frozen=True, slots=True)
class Interpolation:
    """The substituted text and which placeholders were found or not."""

    text: str
    missing: tuple[str, ...] = ()  # left verbatim, in order of first use
    used: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # values cut to the limit, or left out because they have no text form


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

    def replace(match: re.Match[str]) -> str:
        if match["escaped"] is not None:
            return "{" + match["escaped"] + "}"
        expr = match["expr"]
        if expr is None:
            return match.group()
        found = _lookup(expr, namespace, limit)
        if found is None:
            missing[expr] = None
            return match.group()
        if found.note is not None:
            notes[found.note] = None
        if found.text is None:
            return match.group()
        used[expr] = None
        return _fence(expr, found.text) if fence else found.text

    return Interpolation(_TOKEN.sub(replace, text), tuple(missing), tuple(used), tuple(notes))


def _lookup(expr: str, namespace: Mapping[str, Any], limit: int) -> Text | None:
    """The prompt text of the value ``expr`` names, or None if any step fails."""
    root = _ROOT.match(expr)
    assert root is not None  # _TOKEN only hands over matching expressions
    # Objects in a notebook can fail in any way on getattr, [] or str();
    # a bad value must cost one placeholder, not the whole cell.
    try:
        # ``in`` first: a defaultdict namespace must not grow a key.
        if root.group() not in namespace:
            return None
        value = namespace[root.group()]
        for step in _STEP.finditer(expr, root.end()):
            if step["attr"] is not None:
                value = getattr(value, step["attr"])
            elif step["index"] is not None:
                value = value[int(step["index"])]
            else:
                value = value[step["key"]]
        return as_text(value, expr, limit)
    except Exception:
        return None


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
