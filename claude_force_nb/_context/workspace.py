"""The kernel as the model may look at it: a namespace, its cells and its last error, behind read-only tools.

:class:`Workspace` offers the tools (:meth:`Workspace.tools`), and checks a
cached answer against the kernel as it is now (:meth:`Workspace.sees_same`):
every read the model made is made again, and the answer is served only if
each gives what the model saw. So the cache key of a ``--context`` answer is,
in effect, its request plus every read's result: a changed frame is a miss.
"""

from __future__ import annotations

import fnmatch
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .describe import describe, size_of
from .secrets import secret_name, secret_value
from .show import Failed, final, guarded, short_repr, type_name
from .snippets import NOT_RUN

MAX_VARIABLES = 200
# Tools that only read: made again to check a cached answer. RUN is the one that may change the kernel.
LIST, DESCRIBE, CELL, ERROR, RUN = "list_variables", "describe_variable", "read_cell", "last_error", "run_python"
READS = (LIST, DESCRIBE, CELL, ERROR)
# Names a kernel defines for itself (IPython's, a script's): never listed.
_OWN = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})
# Types of this package's own results: what a cell's --out keeps is not the user's data.
_RESULT_MODULES = ("claude_force_nb.",)


@dataclass
class Workspace:
    """What ``--context`` may look at: a namespace, and how to read its cells and its last error.

    ``hidden`` names are the kernel's own (IPython's ``user_ns_hidden``);
    ``exclude`` holds names or glob patterns the user hid; ``last_error``
    gives the latest failure's text, None without one. ``runner`` (see
    :mod:`.snippets`) adds the tool that runs code, when allowed.
    """

    namespace: Mapping[str, Any]
    hidden: Iterable[str] = ()
    exclude: Iterable[str] = ()
    last_error: Callable[[], str | None] | None = None
    runner: Any = None
    _hidden: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._hidden = frozenset(self.hidden) | _OWN
        self.exclude = tuple(self.exclude)

    @classmethod
    def of_main(cls, **options: Any) -> Workspace:
        """The running program's namespace: a kernel's user namespace, or a script's globals."""
        return cls(vars(sys.modules["__main__"]), **options)

    # -- the tools ------------------------------------------------------------------------------------

    def tools(self) -> list[Callable[..., Any]]:
        """The functions the model may call (their docstrings are what it is told of them)."""
        workspace = self

        async def list_variables() -> str:
            """List the variables defined in the user's Python session (a Jupyter kernel), with each one's type
            and size. Start here to learn what data the user has."""
            return workspace.read(LIST, {})

        async def describe_variable(name: str) -> str:
            """Describe one variable: a DataFrame's shape, dtypes, null counts, describe() and first rows; an
            array's shape, dtype and values; a function's signature, docstring and source; a module's public
            names; otherwise its type, size and value."""
            return workspace.read(DESCRIBE, {"name": name})

        async def read_cell(number: int, part: str = "source") -> str:
            """Read a notebook cell by its execution number: part "source" for its code, "output" for the value
            it returned."""
            return workspace.read(CELL, {"number": number, "part": part})

        async def last_error() -> str:
            """The most recent error in the user's session: the failed code and its traceback."""
            return workspace.read(ERROR, {})

        tools: list[Callable[..., Any]] = [list_variables, describe_variable, read_cell, last_error]
        if self.runner is not None:
            tools.append(self.runner.tool(self.namespace))
        return tools

    def read(self, name: str, arguments: Mapping[str, Any]) -> str:
        """One read-only tool's result for ``arguments``: the same state always gives the same text."""
        try:
            if name == LIST:
                text = self._listing()
            elif name == DESCRIBE:
                text = self._describe(str(arguments.get("name", "")))
            elif name == CELL:
                text = self._cell(arguments.get("number"), str(arguments.get("part", "source")))
            elif name == ERROR:
                text = self._error()
            else:
                raise ValueError(f"no read-only tool is called {name!r}")
        except Failed as exc:
            text = f"(failed: {exc})"
        return final(text)

    def sees_same(self, runs: Iterable[Mapping[str, Any]]) -> bool:
        """Whether every read among ``runs`` (a cached answer's tool runs) gives, now, what it gave then.

        An answer given without a snippet it asked for (declined, or no one
        could be asked) is never served again: the next run asks again.
        """
        runs = list(runs)
        if any(run.get("name") == RUN and run.get("result") in NOT_RUN for run in runs):
            return False
        return all(
            self.read(run.get("name", ""), run.get("input") or {}) == run.get("result")
            for run in runs
            if run.get("name") in READS
        )

    # -- what each read says --------------------------------------------------------------------------

    def shown(self, name: str, value: Any) -> str | None:
        """Why ``name`` is not shown ("" when it is, None when it is not even listed)."""
        if name.startswith("_") or name in self._hidden or _ours(value):
            return None
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude):
            return None
        if secret_name(name, value) or secret_value(value):
            return "hidden: it looks like a secret"
        return ""

    def _listing(self) -> str:
        lines: list[str] = []
        names = sorted(str(name) for name in list(self.namespace))
        for name in names:
            value = self.namespace.get(name)
            why = self.shown(name, value)
            if why is None:
                continue
            if len(lines) == MAX_VARIABLES:
                lines.append("[... more variables not listed: describe_variable reads any by name]")
                break
            if why:
                lines.append(f"{name}: {type_name(value)} ({why})")
                continue
            try:
                size = guarded("len()", partial(size_of, value))
            except Failed as exc:
                size = f"size unknown: {exc}"
            preview = None if _has_describe(value) or _code_like(value) else short_repr(value, 80)
            details = ", ".join(part for part in (size, f"= {preview}" if preview else "") if part)
            lines.append(f"{name}: {type_name(value)}" + (f" ({details})" if details else ""))
        return "\n".join(lines) if lines else "(no variables yet)"

    def _describe(self, name: str) -> str:
        if name not in self.namespace:
            return f"No variable named {name!r}; list_variables shows what there is."
        value = self.namespace[name]
        why = self.shown(name, value)
        if why is None:
            return f"{name!r} is not available to look at."
        if why:
            return f"{name}: {type_name(value)} ({why}; not shown)"
        return describe(name, value)

    def _cell(self, number: Any, part: str) -> str:
        if isinstance(number, bool) or not isinstance(number, int):
            return "The cell number must be a whole number."
        if part == "source":
            inputs = self.namespace.get("In")
            if not isinstance(inputs, list):
                return "This session keeps no cell history (it is not a notebook or IPython)."
            if not 0 < number < len(inputs):
                return f"No cell [{number}]; cells so far run from 1 to {len(inputs) - 1}."
            return f"Cell [{number}]:\n{inputs[number]}"
        if part == "output":
            outputs = self.namespace.get("Out")
            if not isinstance(outputs, dict):
                return "This session keeps no cell outputs (it is not a notebook or IPython)."
            if number not in outputs:
                return f"Cell [{number}] returned no value (what it printed is not kept)."
            value = outputs[number]
            return f"Out[{number}]: {type_name(value)}\n" + (
                describe(f"Out[{number}]", value) if _has_describe(value) else short_repr(value, 3_000) or ""
            )
        return 'part must be "source" or "output".'

    def _error(self) -> str:
        text = self.last_error() if self.last_error is not None else _last_exception()
        return text or "No error in this session yet."


def _ours(value: Any) -> bool:
    return any(getattr(type(value), "__module__", "").startswith(m) for m in _RESULT_MODULES)


def _code_like(value: Any) -> bool:
    """Classes, functions and modules: their type says what they are; describe_variable says the rest."""
    return isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType))


def _has_describe(value: Any) -> bool:
    """Frames and arrays: described, never repr'd in a listing (their repr is a table)."""
    module = getattr(type(value), "__module__", "") or ""
    return module.split(".")[0] in ("pandas", "numpy", "polars")


def _last_exception() -> str | None:
    """The interpreter's last uncaught error (IPython keeps it there too)."""
    error = getattr(sys, "last_value", None)
    if error is None:
        return None
    lines = traceback.format_exception(type(error), error, error.__traceback__, limit=8)
    return "".join(lines)
