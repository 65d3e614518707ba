"""The kernel as Claude may look at it (``--context``): read-only tools over the namespace, and, only when the
user allows it (``--allow-run``), one that runs code.

:mod:`.workspace` holds the tools and the cache rule, :mod:`.describe` and
:mod:`.show` what a value looks like to the model, :mod:`.secrets` what is
never shown, :mod:`.snippets` running code, and :mod:`.limits` the time limit
on anything that calls the user's objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .snippets import Runner
from .workspace import Workspace

__all__ = ["Runner", "Workspace", "workspace_of"]
# allow_run's values: no code runs (False), each snippet asked for (True), or run without asking ("yes").
ALLOW_RUN = (False, True, "yes")


def workspace_of(context: Any, allow_run: Any = False) -> Workspace | None:
    """The workspace ``context=`` names: True (the running program's namespace), a mapping, or a
    :class:`Workspace`; None for False or None. ``allow_run`` adds the tool that runs code."""
    if allow_run not in ALLOW_RUN:
        raise ValueError(f"allow_run must be False, True (ask before each snippet) or 'yes', not {allow_run!r}.")
    if context is None or context is False:
        if allow_run:
            raise ValueError("allow_run needs context: snippets run in the namespace context= names.")
        return None
    if isinstance(context, Workspace):
        workspace = context
    elif context is True:
        workspace = Workspace.of_main()
    elif isinstance(context, Mapping):
        workspace = Workspace(context)
    else:
        raise TypeError(f"context must be True, a namespace (a dict) or a Workspace, not {type(context).__name__}.")
    if allow_run and workspace.runner is None:
        workspace.runner = Runner(ask=allow_run is True)
    return workspace
