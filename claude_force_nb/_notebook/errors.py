"""The errors of this session's cells, kept for ``{Err[n]}`` and ``%agent error``.

As ``Out[n]`` holds what cell ``n`` returned, ``Err[n]`` holds how it failed:
its source and the error with the traceback of the user's own frames (IPython's
are left out). ``Err[-1]`` is the latest.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import IPython

# Frames in IPython's own files (the shell that ran the cell) say nothing about the error.
_IPYTHON_DIR = str(Path(IPython.__file__).parent)
# Where IPython and ipykernel compile cells to: <ipython-input-3-abc>, /tmp/ipykernel_123/456.py.
_CELL_FILE = re.compile(r"^<ipython-input-|[/\\]ipykernel_\d+[/\\]\d+\.py$")


@dataclass(frozen=True, slots=True)
class CellError:
    """A failed cell: its number, source and formatted error."""

    number: int | None
    source: str
    error: str

    def __str__(self) -> str:
        label = f"Cell [{self.number}]" if self.number is not None else "The cell"
        return f"{label}:\n```python\n{self.source.rstrip()}\n```\n\nError:\n```\n{self.error.rstrip()}\n```"


class Errors:
    """Failed cells by execution count; ``errors[-1]`` is the latest."""

    def __init__(self, keep: int = 50):
        self._by_number: dict[int, CellError] = {}
        self._order: list[CellError] = []
        self._keep = keep

    def add(self, number: int | None, source: str, exc: BaseException) -> None:
        record = CellError(number, source, _format(exc))
        if number is not None:
            self._by_number[number] = record
        self._order.append(record)
        while len(self._order) > self._keep:  # the oldest go, from both views
            gone = self._order.pop(0)
            if gone.number is not None and self._by_number.get(gone.number) is gone:
                del self._by_number[gone.number]

    @property
    def last(self) -> CellError | None:
        return self._order[-1] if self._order else None

    def __getitem__(self, number: int) -> CellError:
        if number < 0:
            return self._order[number]
        return self._by_number[number]

    def __len__(self) -> int:
        return len(self._order)


def _format(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_IPYTHON_DIR)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    for frame in frames:
        # A cell's code lives in a file named after the kernel's process: named as a cell instead, so
        # the same error asks the same question (and hits the cache) in every kernel.
        name = "<cell>" if _CELL_FILE.search(frame.filename) else frame.filename
        lines.append(f'  File "{name}", line {frame.lineno}, in {frame.name}\n')
        if frame.line:
            lines.append(f"    {frame.line}\n")
    return "".join(lines + traceback.format_exception_only(type(exc), exc))
