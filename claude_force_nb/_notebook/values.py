"""How a value from the notebook becomes prompt text: whole tables and arrays, never a screen repr.

``str()`` is what a value shows on screen, which is wrong for a prompt in
three ways: a DataFrame prints 10 of its 100 rows with ``..`` between them,
an array elides its middle, and most other objects print only
``<Something object at 0x...>``. Here tables go as CSV, rows and Series as
``label: value`` lines, arrays in full, each up to ``limit`` characters with
a note when cut; an image goes as an image beside the text, which names it;
an object with no text form is not sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

DEFAULT_DATA_LIMIT = 50_000  # characters a table or array may take in a prompt

_DEFAULT_REPR = re.compile(r"<[\w.<>]+ object at 0x[0-9a-fA-F]+>")  # <locals> in classes made inside functions
# (top-level package, class name): matched by name, so that pandas, numpy and the
# image libraries are never imported just to ask. pandas 3 calls its classes
# pandas.DataFrame, earlier versions pandas.core.frame.DataFrame.
_KINDS = {
    ("pandas", "DataFrame"): "frame",
    ("pandas", "Series"): "series",
    ("pandas", "Index"): "index",
    ("polars", "DataFrame"): "polars-frame",
    ("polars", "Series"): "polars-series",
    ("numpy", "ndarray"): "array",
    ("IPython", "Image"): "image",
    ("PIL", "Image"): "image",
    ("matplotlib", "Figure"): "image",
}


class Text(NamedTuple):
    """The text to send (None: send nothing, keep the placeholder) and a note for the user, if any."""

    text: str | None
    note: str | None = None


def is_image(value: Any) -> bool:
    """A matplotlib Figure, a PIL image or an IPython Image: sent as an image beside the text."""
    return _kind(value) == "image"


def as_text(value: Any, name: str, limit: int = DEFAULT_DATA_LIMIT) -> Text:
    """``value`` as prompt text, with a note when it was cut or cannot be sent."""
    kind = _kind(value)
    if kind == "image":
        return Text(f"[image: {name}]")
    if kind == "frame":
        return _table(value, name, limit)
    if kind == "series":
        return _lines(value.items(), len(value), name, limit)
    if kind == "index":
        return _lines(enumerate(value), len(value), name, limit)
    if kind == "polars-frame":
        return _polars_table(value, name, limit)
    if kind == "polars-series":
        return _lines(enumerate(value), len(value), name, limit)
    if kind == "array":
        return _array(value, name, limit)
    text = str(value)
    if _DEFAULT_REPR.fullmatch(text.strip()):
        return Text(
            None,
            f"{{{name}}} ({type(value).__name__}) has no text form, only {text.strip()}; it stays as written. "
            "Pass a string, or give the class a __str__.",
        )
    return Text(text)


def _kind(value: Any) -> str:
    for cls in type(value).__mro__:
        kind = _KINDS.get((cls.__module__.partition(".")[0], cls.__qualname__))
        if kind is not None:
            return kind
    return "other"


def _table(frame: Any, name: str, limit: int) -> Text:
    # A default RangeIndex carries nothing; any other index is data.
    index = type(frame.index).__name__ != "RangeIndex"

    def csv(rows: int) -> str:
        return str(frame.iloc[:rows].to_csv(index=index)).rstrip("\n")

    rows = _rows_that_fit(csv, len(frame), limit)
    if rows is None:
        return Text(None, f"{{{name}}}: its column names alone exceed {limit:,} characters; send fewer columns.")
    if rows == len(frame):
        return Text(csv(rows))
    return Text(
        csv(rows),
        f"{{{name}}}: sent the first {rows:,} of {len(frame):,} rows as CSV ({limit:,}-character limit); send a "
        f"slice ({name}.iloc[a:b]), or raise %config AgentMagics.data_limit.",
    )


def _polars_table(frame: Any, name: str, limit: int) -> Text:
    def csv(rows: int) -> str:
        return str(frame.head(rows).write_csv()).rstrip("\n")

    rows = _rows_that_fit(csv, frame.height, limit)
    if rows is None:
        return Text(None, f"{{{name}}}: its column names alone exceed {limit:,} characters; send fewer columns.")
    note = None
    if rows < frame.height:
        note = f"{{{name}}}: sent the first {rows:,} of {frame.height:,} rows as CSV ({limit:,}-character limit)."
    return Text(csv(rows), note)


def _rows_that_fit(render: Callable[[int], str], total: int, limit: int) -> int | None:
    """The most leading rows whose rendering fits ``limit``; None if not even the header does.

    The prefix grows by doubling and then bisects, so a table far over the limit is never formatted whole.
    """
    if len(render(0)) > limit:
        return None
    fits, probe = 0, min(total, 64)
    while fits < total:
        if len(render(probe)) > limit:
            break
        fits, probe = probe, min(total, probe * 2)
    else:
        return fits
    low, high = fits, probe  # low fits, high does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if len(render(middle)) <= limit else (low, middle)
    return low


def _lines(entries: Iterable[tuple[Any, Any]], total: int, name: str, limit: int) -> Text:
    lines: list[str] = []
    size = 0
    for label, value in entries:  # stops at the limit: never renders the rest
        line = f"{label}: {value}"
        size += len(line) + 1
        if size - 1 > limit:
            return Text(
                "\n".join(lines),
                f"{{{name}}}: sent {len(lines):,} of {total:,} entries ({limit:,}-character limit); "
                "raise %config AgentMagics.data_limit for more.",
            )
        lines.append(line)
    return Text("\n".join(lines))


def _array(array: Any, name: str, limit: int) -> Text:
    import numpy

    # Format only a leading part that already makes more than the limit: formatting a huge array whole
    # takes seconds to minutes, all for text that would be cut.
    part = array
    if array.ndim and array.size * 2 > limit:
        per_row = max(1, array[0].size) if array.ndim > 1 else 1
        part = array[: max(1, limit // (2 * per_row))]
        if part.size * 2 > limit:  # one row alone is too long: cut its last axis too, keeping the nesting
            part = part[..., : max(1, limit // (2 * max(1, part.size // max(1, part.shape[-1]))))]
    text = numpy.array2string(part, threshold=part.size + 1, max_line_width=120, separator=", ")
    if part is array and len(text) <= limit:
        return Text(text)
    return Text(
        text[:limit].rsplit("\n", 1)[0] + "\n...",
        f"{{{name}}}: sent the first {limit:,} characters of a {'x'.join(map(str, array.shape))} array; send a "
        "slice, or raise %config AgentMagics.data_limit.",
    )
