"""Reading text: an answer's fenced code blocks and JSON, an error's first line, what a kernel can send."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

# CommonMark fences: three or more backticks or tildes, indented at most three
# spaces, an info string whose first word is the language.
_OPEN = re.compile(r" {0,3}(?P<fence>`{3,}(?=[^`]*$)|~{3,})\s*(?P<info>\S*)")


def printable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX`` escapes, so that it can be encoded and sent.

    ``json.loads`` and a cut emoji both make them; a kernel cannot put one in a message.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def first_line(exc: BaseException, lines: int = 1) -> str:
    """An exception's message on one line (its first ``lines`` joined), or its type's name when it has none."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[:lines]) if text else type(exc).__name__


class CodeBlock(NamedTuple):
    """One fenced block: its language tag ("" when none) and its code."""

    language: str
    code: str


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block in ``text``, in order; one left open runs to the end, as in Markdown."""
    blocks: list[CodeBlock] = []
    fence, language = "", ""
    lines: list[str] = []
    for line in text.splitlines():
        if not fence:
            opening = _OPEN.match(line)
            if opening:
                fence, lines = opening["fence"], []
                language = opening["info"].strip("`{}.")
            continue
        closing = line.strip()
        # A closing fence uses the same character, at least as many times, and nothing else.
        if len(line) - len(line.lstrip(" ")) <= 3 and len(closing) >= len(fence) and closing == fence[0] * len(closing):
            blocks.append(CodeBlock(language, "\n".join(lines)))
            fence = ""
        else:
            lines.append(line)
    if fence:
        blocks.append(CodeBlock(language, "\n".join(lines).rstrip("\n")))
    return blocks


def parse_json(text: str) -> Any:
    """The JSON value ``text`` holds, bare or in a fenced block; ValueError when there is none."""
    candidates = [text, *(block.code for block in code_blocks(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate, parse_constant=_not_json)
        except ValueError:
            continue
    raise ValueError(f"The answer is not JSON: {_preview(text)!r}. Ask for JSON only, or read .output as text.")


def _not_json(constant: str) -> Any:
    # NaN and Infinity are Python's extension, not JSON: a strict parser downstream would reject them.
    raise ValueError(f"{constant} is not JSON")


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
