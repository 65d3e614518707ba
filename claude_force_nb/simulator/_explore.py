"""A model exploring a kernel: offered the ``--context`` tools, it looks before it answers.

It lists the variables; then describes the first one the task names; then,
if it may run code and the task quotes some in backticks, runs it; then
answers from what it read. Each step is one reply with one tool call, so
tests can follow the whole loop through the real SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

LIST, DESCRIBE, RUN = "list_variables", "describe_variable", "run_python"
_LISTED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): ", re.MULTILINE)
_CODE = re.compile(r"`([^`\n]+)`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def offered(tools: Sequence[Mapping[str, Any]]) -> bool:
    names = {tool.get("name") for tool in tools}
    return LIST in names and DESCRIBE in names


def next_call(task: str, called: Sequence[tuple[str, str]], tools: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
    """The next (tool, input), given the (tool, result) pairs so far; ("", {}) when it is time to answer."""
    done = [name for name, _ in called]
    if LIST not in done:
        return LIST, {}
    if DESCRIBE not in done:
        listing = next(text for name, text in called if name == LIST)
        named = _named(task, _LISTED.findall(listing))
        if named:
            return DESCRIBE, {"name": named}
    code = _CODE.search(task)
    if code and RUN not in done and any(tool.get("name") == RUN for tool in tools):
        return RUN, {"code": code.group(1)}
    return "", {}


def answer(task: str, called: Sequence[tuple[str, str]]) -> str:
    """The answer from what the tools gave: what there is, what the variable named is, what the code did."""
    sentences = []
    for name, text in called:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if name == LIST:
            names = _LISTED.findall(text)
            sentences.append(
                f"The kernel holds {len(names)} variable{'s' if len(names) != 1 else ''}"
                + (f": {', '.join(names[:8])}." if names else ".")
            )
        elif name == DESCRIBE:
            failed = [line for line in lines[2:] if "not available" in line or "no value shown" in line]
            sentences.append("Looking closer, " + "; ".join(lines[:2] + failed[:2]) + ".")
        elif name == RUN:
            sentences.append("Running the code gave: " + " ".join(lines[:4]) + ".")
    if not any(name == DESCRIBE for name, _ in called):
        sentences.append("The task names none of them, so I looked no further.")
    return f'On "{task[:80]}": ' + " ".join(sentences)


def _named(task: str, listed: Sequence[str]) -> str | None:
    words = set(_WORD.findall(task))
    return next((name for name in listed if name in words), None)
