"""What a cell asks for: its task after substitution, and the calls of a sweep."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

from IPython.core.error import UsageError

from .._call import Call
from .._options import CallOptions
from .interpolate import interpolate
from .media import image_block
from .values import DEFAULT_DATA_LIMIT


class Prompt(NamedTuple):
    """What a cell sends: its text, and the image blocks its placeholders named."""

    text: str
    attachments: tuple[dict[str, Any], ...] = ()


def cell_task(
    cell: str,
    namespace: Mapping[str, Any],
    *,
    raw: bool,
    fence: bool,
    limit: int = DEFAULT_DATA_LIMIT,
    quiet: bool = False,
    drawn: dict[int, tuple[dict[str, Any], str | None]] | None = None,
) -> Prompt:
    """What a cell sends: ``{name}`` placeholders filled from ``namespace`` unless ``raw``; images beside."""
    if not cell.strip():
        raise UsageError("The cell is empty: write the task below the magic line.")
    if raw:
        return Prompt(cell.strip())
    result = interpolate(cell, namespace, fence=fence, limit=limit)
    attachments = []
    notes = list(result.notes)
    for name, image in result.images:
        # A sweep draws each image once, not once per item (``drawn``, by object).
        known = drawn.get(id(image)) if drawn is not None else None
        block, note = known if known is not None else image_block(image, name)
        if drawn is not None:
            drawn[id(image)] = (block, note)
        attachments.append(block)
        if note:
            notes.append(note)
    if not quiet:
        if result.missing:
            names = ", ".join("{" + m + "}" for m in result.missing)
            print(f"Note: left as written, not defined: {names} (use --raw to silence).")
        for note in notes:
            print(f"Note: {note}")
    return Prompt(result.text.strip(), tuple(attachments))


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
    attachments: Sequence[dict[str, Any]] = (),
) -> list[Call]:
    """One call per agent, item of ``namespace[over]`` (as ``{item}``) and model, in that order.

    ``attachments`` (files, figures) go with every call.
    """
    if over is None:
        prompt = cell_task(cell, namespace, raw=raw, fence=fence, limit=limit)
        return [_call(name, prompt, model, None, attachments) for name in agents for model in models]
    items = sweep_items(namespace, over)
    if not interpolate(cell, {"item": items[0]}).used:
        raise UsageError(f"--over {over}: the cell never uses {{item}}, so every call would be the same.")
    drawn: dict[int, tuple[dict[str, Any], str | None]] = {}
    tasks = [
        (
            item,
            cell_task(
                cell, ChainMap({"item": item}, namespace), raw=raw, fence=fence, limit=limit, quiet=i > 0, drawn=drawn
            ),
        )
        for i, item in enumerate(items)
    ]
    return [
        _call(name, prompt, model, item, attachments) for name in agents for item, prompt in tasks for model in models
    ]


def _call(agent: str, prompt: Prompt, model: str | None, item: Any, attachments: Sequence[dict[str, Any]]) -> Call:
    """One call of a sweep: the prompt's images, then the cell's files and figures, go beside its text."""
    blocks = [*prompt.attachments, *attachments]
    return Call(agent, prompt.text, model, item, CallOptions(attachments=tuple(blocks)))


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
