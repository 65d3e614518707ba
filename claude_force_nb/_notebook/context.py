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

from collections.abc import Iterable
from typing import Any

from IPython.display import display

from .._context import Runner, Workspace
from .._context.snippets import ask_with_input
from .errors import Errors

# --allow-run's values: ask before each snippet (the flag alone), or run them without asking.
ASK, YES = "ask", "yes"


def workspace_for(args: Any, shell: Any, errors: Errors, *, exclude: Iterable[str], seconds: float) -> Workspace | None:
    """The workspace ``--context`` (and ``--allow-run``, which implies it) give a cell; None without them."""
    allow_run = getattr(args, "allow_run", None)
    if not getattr(args, "context", False) and allow_run is None:
        return None
    runner = Runner(ask=allow_run == ASK, confirm=ask_with_input, show=show, seconds=seconds) if allow_run else None
    return Workspace(
        shell.user_ns,
        hidden=getattr(shell, "user_ns_hidden", ()),
        exclude=exclude,
        last_error=lambda: str(errors.last) if errors.last is not None else None,
        runner=runner,
    )


def show(text: str) -> None:
    """A snippet, or what came of it, in the cell's output: its first line, then the rest as code."""
    head, _, body = text.partition("\n")
    markdown = f"**{head}**\n\n```\n{body}\n```" if body else f"**{head}**"
    display({"text/markdown": markdown, "text/plain": text}, raw=True)
