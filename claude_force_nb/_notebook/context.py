"""``--context`` and ``--allow-run``: the kernel's namespace, cells and last error, offered to the model.

The workspace reads the shell's user namespace, leaving out what IPython
keeps there for itself (``user_ns_hidden``) and what ``%config
AgentMagics.context_exclude`` hides. Snippets are shown in the cell's output
before they run and with their result after; with ``--allow-run`` the user
confirms each on the front end's input line (an ipywidgets button cannot be
clicked while the cell that waits for it is running), and where no one can
answer (nbclient, papermill) only ``--allow-run=yes`` lets them run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from IPython.core.error import UsageError
from IPython.display import display

from .._context import Workspace
from .._context.workspace import YES
from .errors import Errors

# --allow-run alone asks before each snippet; --allow-run=yes runs them without asking.
ASK = "ask"
FLAG = "--allow-run"
# What each --allow-run means to the workspace: no snippets, ask before each, or run them without asking.
_ALLOW_RUN: dict[str | None, bool | str] = {None: False, ASK: True, YES: YES}
_BACKTICKS = re.compile(r"`+")
_LONG_LINE = 160


def allow_run_words(words: list[str]) -> list[str]:
    """The magic line's words with a bare ``--allow-run`` spelled out, so the word after it stays an agent."""
    return [f"{FLAG}={ASK}" if word == FLAG else word for word in words]


def workspace_for(args: Any, shell: Any, errors: Errors, *, exclude: Iterable[str], seconds: float) -> Workspace | None:
    """The workspace ``--context`` (and ``--allow-run``, which implies it) give a cell; None without them."""
    allow_run = getattr(args, "allow_run", None)
    if not getattr(args, "context", False) and allow_run is None:
        return None
    if getattr(args, "background", False):
        raise UsageError(
            "--context and --allow-run read and run in the kernel as the cell runs; a --background sweep runs "
            "beside later cells that change it. Drop --background."
        )
    return Workspace(
        shell.user_ns,
        hidden=getattr(shell, "user_ns_hidden", ()),
        exclude=exclude,
        last_error=lambda: str(errors.last) if errors.last is not None else None,
        allow_run=_ALLOW_RUN[allow_run],
        show=show,
        snippet_seconds=seconds,
    )


def show(text: str) -> None:
    """A snippet, or what came of it, in the cell's output: its first line, then the rest as code.

    The fence is longer than any run of backticks in the code, so nothing in it can end the block and hide what
    follows, and a very long line is pointed out (code past the edge is easy to miss).
    """
    head, _, body = text.partition("\n")  # control characters were escaped where the text was made
    long = [n for n, line in enumerate(body.splitlines(), 1) if len(line) > _LONG_LINE]
    if long:
        head += f" (line {', '.join(map(str, long))} runs past {_LONG_LINE} characters: scroll to read it all)"
    fence = "`" * max(3, 1 + max((len(run) for run in _BACKTICKS.findall(body)), default=0))
    markdown = f"**{head}**\n\n{fence}\n{body}\n{fence}" if body else f"**{head}**"
    display({"text/markdown": markdown, "text/plain": f"{head}\n{body}" if body else head}, raw=True)
