"""What the model learns of one value, by what it really is (its type, never what its attributes claim).

A frame: shape, dtypes, nulls, ``describe()`` and a few rows. An array:
shape, dtype and a few values. A function or class: signature, docstring
and source. A module: its public names. Anything else: its type, size and a
bounded repr. Each part that fails says so and the others are still given.
"""

from __future__ import annotations

import collections
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

from .show import Failed, cut, guarded, repr_or_why, short_repr, type_name

ROWS = 5
MAX_NAMES = 150
MAX_SOURCE = 3_000
MAX_DOC = 1_000
_TABLE_WIDTH = 160
# A part may make several calls into the object, each with its own shorter limit (show.CALL_SECONDS).
PART_SECONDS = 5.0
_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset, range, collections.deque)


def describe(name: str, value: Any) -> str:
    """A description of ``value`` under ``name``, within the tools' bounds."""
    kind = type(value)
    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")
    if pandas is not None and issubclass(kind, pandas.DataFrame):
        parts = _frame(value)
    elif pandas is not None and issubclass(kind, pandas.Series):
        parts = _series(value)
    elif numpy is not None and issubclass(kind, numpy.ndarray):
        parts = _array(value, numpy)
    elif issubclass(kind, types.ModuleType):
        parts = _module(value)
    elif issubclass(kind, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        parts = _code(value)
    elif issubclass(kind, (set, frozenset)):
        parts = [("size", lambda: size_of(value)), ("value", lambda: sorted_set(value, 2_000))]
    else:
        parts = [("size", lambda: size_of(value)), ("value", lambda: repr_or_why(value, 2_000))]
    lines = [f"{name}: {type_name(value)}"]
    for label, part in parts:
        try:
            text = guarded(label, part, PART_SECONDS)
        except Failed as exc:
            text = f"(not available: {exc})"
        if not text:
            continue
        lines.append(f"{label}:\n{text}" if "\n" in text else f"{label}: {text}")
    return "\n".join(lines)


def size_of(value: Any) -> str:
    """A short size: a frame's or array's shape, a container's length; "" when it has none."""
    kind = type(value)
    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")
    if pandas is not None and issubclass(kind, pandas.DataFrame):
        rows, columns = value.shape
        return f"{rows:,} rows x {columns:,} columns"
    if pandas is not None and issubclass(kind, pandas.Series):
        return f"{len(value):,} rows"
    if numpy is not None and issubclass(kind, numpy.ndarray):
        return f"shape {tuple(value.shape)}, {value.dtype}"
    # Only the built-in containers: len() of anything else may compute a lazy frame or run a query.
    if issubclass(kind, _SIZED):
        length = len(value)
        return f"{length:,} items" if not issubclass(kind, (str, bytes)) else f"{length:,} characters"
    return ""


def sorted_set(value: Any, limit: int) -> str:
    """A set's elements in a fixed order: its repr's order changes with every interpreter's hash seed."""
    shown = sorted(short_repr(element, 100) or type_name(element) for element in value)
    return cut("{" + ", ".join(shown) + "}", limit)


Parts = list[tuple[str, Callable[[], str]]]


def _frame(frame: Any) -> Parts:
    return [
        ("shape", lambda: f"{frame.shape[0]:,} rows x {frame.shape[1]:,} columns"),
        ("dtypes", lambda: cut(frame.dtypes.to_string(), 1_500)),
        ("nulls per column", lambda: cut(frame.isna().sum().to_string(), 1_500)),
        ("describe()", lambda: cut(frame.describe().to_string(line_width=_TABLE_WIDTH), 2_000)),
        (
            f"first {ROWS} rows",
            lambda: cut(frame.head(ROWS).to_string(line_width=_TABLE_WIDTH, max_colwidth=40), 1_500),
        ),
    ]


def _series(series: Any) -> Parts:
    return [
        ("length", lambda: f"{len(series):,}, dtype {series.dtype}"),
        ("nulls", lambda: str(int(series.isna().sum()))),
        ("describe()", lambda: cut(series.describe().to_string(), 1_000)),
        (f"first {ROWS} values", lambda: cut(series.head(ROWS).to_string(), 1_000)),
    ]


def _array(array: Any, numpy: Any) -> Parts:
    def statistics() -> str:
        if array.dtype.kind not in "biuf" or not array.size:
            return "(not numeric, or empty)"
        return f"{array.min()!r}, {array.max()!r}, {array.mean()!r}"

    return [
        ("shape", lambda: f"{tuple(array.shape)}, dtype {array.dtype}, {array.size:,} elements"),
        ("values", lambda: cut(numpy.array2string(array, threshold=20, edgeitems=3, max_line_width=120), 1_500)),
        ("min, max, mean", statistics),
    ]


def _code(function: Any) -> Parts:
    return [
        ("signature", lambda: f"{getattr(function, '__name__', '?')}{inspect.signature(function)}"),
        ("docstring", lambda: cut(inspect.getdoc(function) or "(none)", MAX_DOC)),
        ("source", lambda: cut(inspect.getsource(function), MAX_SOURCE)),
    ]


def _module(module: Any) -> Parts:
    def names() -> str:
        declared = getattr(module, "__all__", None)
        if isinstance(declared, (list, tuple)) and all(isinstance(n, str) for n in declared):
            public = sorted(declared)
        else:
            public = sorted(n for n in vars(module) if not n.startswith("_"))
        shown = ", ".join(public[:MAX_NAMES])
        return shown + (f" [... and {len(public) - MAX_NAMES:,} more]" if len(public) > MAX_NAMES else "")

    return [
        ("about", lambda: cut((inspect.getdoc(module) or "(no docstring)").split("\n\n")[0], 500)),
        ("public names", names),
    ]
