"""What a cell asks for: its task after substitution, and the calls of a sweep."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from IPython.core.error import UsageError

from .._call import Call
from .interpolate import interpolate
from .values import DEFAULT_DATA_LIMIT


def cell_task(
    cell: str,
    namespace: Mapping[str, Any],
    *,
    raw: bool,
    fence: bool,
    limit: int = DEFAULT_DATA_LIMIT,
    quiet: bool = False,
) -> str:
    """The task a cell sends: ``{name}`` placeholders filled from ``namespace`` unless ``raw``."""
    if not cell.strip():
        raise UsageError("The cell is empty: write the task below the magic line.")
    if raw:
        return cell.strip()
    result = interpolate(cell, namespace, fence=fence, limit=limit)
    if not quiet:
        if result.missing:
            names = ", ".join("{" + m + "}" for m in result.missing)
            print(f"Note: left as written, not defined: {names} (use --raw to silence).")
        for note in result.notes:
            print(f"Note: {note}")
    return result.text.strip()


def sweep_calls(
    cell: str,
    namespace: MutableMapping[str, Any],
    agents: list[str],
    models: list[str | None],
    *,
    over: str | None,
    raw: bool,
    fence: bool,
    limit: int = DEFAULT_DATA_LIMIT,
) -> list[Call]:
    """One call per agent, item of ``namespace[over]`` (as ``{item}``) and model, in that order."""
    if over is None:
        task = cell_task(cell, namespace, raw=raw, fence=fence, limit=limit)
        return [Call(name, task, model) for name in agents for model in models]
    items = sweep_items(namespace, over)
    if not interpolate(cell, {"item": items[0]}).used:
        raise UsageError(f"--over {over}: the cell never uses {{item}}, so every call would be the same.")
    tasks = [
        (item, cell_task(cell, ChainMap({"item": item}, namespace), raw=raw, fence=fence, limit=limit, quiet=i > 0))
        for i, item in enumerate(items)
    ]
    return [Call(name, task, model, item) for name in agents for item, task in tasks for model in models]


def sweep_items(namespace: Mapping[str, Any], name: str) -> list[Any]:
    """The inputs ``--over NAME`` sweeps: a list's items, a DataFrame's rows."""
    if name not in namespace:
        raise UsageError(f"--over {name}: no variable named {name!r} in the namespace.")
    value = namespace[name]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UsageError(f"--over {name}: expected a list or other iterable of inputs, got {type(value).__name__}.")
    # A DataFrame iterates its column names; a sweep wants its rows ({item.column}).
    items = [row for _, row in value.iterrows()] if hasattr(value, "iterrows") else list(value)
    if not items:
        raise UsageError(f"--over {name}: {name} is empty, so there is nothing to run.")
    return items
