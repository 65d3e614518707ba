"""Reading an answer's text: its fenced code blocks and the JSON in it."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

_FENCE = re.compile(r"```([\w+.-]*)[^\n]*\n(.*?)```", re.S)


class CodeBlock(NamedTuple):
    """One fenced block: its language tag ("" when none) and its code."""

    language: str
    code: str


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block in ``text``, in order."""
    return [CodeBlock(match[1], match[2].rstrip("\n")) for match in _FENCE.finditer(text)]


def parse_json(text: str) -> Any:
    """The JSON value ``text`` holds, bare or in a fenced block; ValueError when there is none."""
    candidates = [text, *(block.code for block in code_blocks(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError(f"The answer is not JSON: {_preview(text)!r}. Ask for JSON only, or read .output as text.")


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
