"""How a value from the notebook becomes prompt text: whole tables and arrays, never a screen repr.

``str()`` is what a value shows on screen, which is wrong for a prompt in
three ways: a DataFrame prints 10 of its 100 rows with ``..`` between them,
an array elides its middle, and most other objects print only
``<Something object at 0x...>``. Here tables go as CSV, rows and Series as
``label: value`` lines, arrays in full, each up to ``limit`` characters with
a note when cut; an object with no text form (an image, say) is not sent.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

DEFAULT_DATA_LIMIT = 50_000  # characters a table or array may take in a prompt

_DEFAULT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
# (top-level package, class name): matched by name, so that pandas, numpy and the
# image libraries are never imported just to ask. pandas 3 calls its classes
# pandas.DataFrame, earlier versions pandas.core.frame.DataFrame.
_KINDS = {
    ("pandas", "DataFrame"): "frame",
    ("pandas", "Series"): "series",
    ("numpy", "ndarray"): "array",
    ("IPython", "Image"): "image",
    ("PIL", "Image"): "image",
    ("matplotlib", "Figure"): "image",
}


class Text(NamedTuple):
    """The text to send (None: send nothing, keep the placeholder) and a note for the user, if any."""

    text: str | None
    note: str | None = None


def as_text(value: Any, name: str, limit: int = DEFAULT_DATA_LIMIT) -> Text:
    """``value`` as prompt text, with a note when it was cut or cannot be sent."""
    kind = _kind(value)
    if kind == "image":
        return Text(None, f"{{{name}}} is an image, which is not sent as text; it stays as written.")
    if kind == "frame":
        return _table(value, name, limit)
    if kind == "series":
        return _lines(value, name, limit)
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
    text = frame.to_csv(index=index)
    if len(text) <= limit:
        return Text(text.rstrip("\n"))
    lines = text.splitlines()
    kept, size = [lines[0]], len(lines[0]) + 1
    for line in lines[1:]:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    rows = len(kept) - 1
    return Text(
        "\n".join(kept),
        f"{{{name}}}: sent the first {rows:,} of {len(frame):,} rows as CSV ({limit:,}-character limit); send a "
        f"slice ({name}.iloc[a:b]), or raise %config AgentMagics.data_limit.",
    )


def _lines(series: Any, name: str, limit: int) -> Text:
    lines = [f"{label}: {value}" for label, value in series.items()]
    text = "\n".join(lines)
    if len(text) <= limit:
        return Text(text)
    cut = text[:limit].rsplit("\n", 1)[0]
    return Text(
        cut,
        f"{{{name}}}: sent {cut.count(chr(10)) + 1:,} of {len(lines):,} entries ({limit:,}-character limit); "
        "raise %config AgentMagics.data_limit for more.",
    )


def _array(array: Any, name: str, limit: int) -> Text:
    import numpy

    text = numpy.array2string(array, threshold=array.size + 1, max_line_width=120, separator=", ")
    if len(text) <= limit:
        return Text(text)
    return Text(
        text[:limit].rsplit("\n", 1)[0] + "\n...",
        f"{{{name}}}: sent the first {limit:,} characters of a {'x'.join(map(str, array.shape))} array; send a "
        "slice, or raise %config AgentMagics.data_limit.",
    )
