"""The kernel as Claude may look at it (``--context``): read-only tools over the namespace, and, only when the
user allows it (``--allow-run``), one that runs code.

:mod:`.workspace` holds the tools and the cache rule, :mod:`.describe` and
:mod:`.show` what a value looks like to the model, :mod:`.secrets` what is
never shown, :mod:`.snippets` running code, and :mod:`.limits` the time limit
on anything that calls the user's objects.
"""

from .workspace import Workspace, workspace_of

__all__ = ["Workspace", "workspace_of"]
