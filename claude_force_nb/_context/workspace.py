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
from dataclasses import dataclass, field, replace
from typing import Any

from .describe import describe, size_of
from .secrets import as_text, secret_name, secret_value
from .show import Failed, final, guarded, short_repr, type_name
from .snippets import DEFAULT_SECONDS, NOT_RUN, Runner, ask_with_input

MAX_VARIABLES = 200
# Tools that only read: made again to check a cached answer. RUN is the one that may change the kernel.
LIST, DESCRIBE, CELL, ERROR, RUN = "list_variables", "describe_variable", "read_cell", "last_error", "run_python"
READS = (LIST, DESCRIBE, CELL, ERROR)
# allow_run's values: no code runs (False), each snippet asked for (True), or run without asking ("yes").
YES = "yes"
# Names a kernel defines for itself (IPython's, a script's): never listed.
_OWN = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})
# A secret-named variable's text is redacted wherever it appears from this length on (shorter is too common).
_MIN_SECRET = 6
_INNERMOST_FRAMES = 8


@dataclass(frozen=True)
class Workspace:
    """What ``--context`` may look at: a namespace, and how to read its cells and its last error.

    ``hidden`` names are the kernel's own (IPython's ``user_ns_hidden``);
    ``exclude`` holds names or glob patterns the user hid; ``last_error``
    gives the latest failure's text, None without one. ``allow_run`` adds the
    tool that runs code (True: ``confirm`` asks before each snippet; "yes":
    without asking); ``show`` puts a snippet, and what came of it, in front
    of the user; each runs for at most ``snippet_seconds``.
    """

    namespace: Mapping[str, Any]
    hidden: Iterable[str] = ()
    exclude: Iterable[str] = ()
    last_error: Callable[[], str | None] | None = None
    allow_run: bool | str = False
    confirm: Callable[[str], bool] = ask_with_input
    show: Callable[[str], None] = print
    snippet_seconds: float = DEFAULT_SECONDS
    _hidden: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_allow_run(self.allow_run)
        hidden = frozenset(self.hidden)
        object.__setattr__(self, "hidden", hidden)  # kept whole, for a copy (dataclasses.replace)
        object.__setattr__(self, "_hidden", hidden | _OWN)
        object.__setattr__(self, "exclude", tuple(self.exclude))

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
        if self.allow_run:
            runner = Runner(
                ask=self.allow_run is True, confirm=self.confirm, show=self.show, seconds=self.snippet_seconds
            )
            tools.append(runner.tool(self.namespace))
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
        return final(text, self._secret_texts())

    def sees_same(self, runs: Iterable[Mapping[str, Any]]) -> bool:
        """Whether every read among ``runs`` (a cached answer's tool runs) gives, now, what it gave then.

        An answer given without a snippet it asked for (declined, or no one
        could be asked) is never served again: the next run asks again. A
        call the SDK refused for its arguments depends on nothing here.
        """
        runs = list(runs)
        if any(run.get("name") == RUN and run.get("result") in NOT_RUN for run in runs):
            return False
        try:
            return all(
                self.read(run.get("name", ""), run.get("input") or {}) == run.get("result")
                for run in runs
                if run.get("name") in READS and not run.get("is_error")
            )
        except Exception:  # a read that cannot be made again: the answer is not known to hold
            return False

    # -- what each read says --------------------------------------------------------------------------

    def shown(self, name: str, value: Any) -> str | None:
        """Why ``name`` is not shown ("" when it is, None when it is not even listed)."""
        if name.startswith("_") or name in self._hidden or _ours(value) or self._excluded(name):
            return None
        if secret_name(name, value) or secret_value(value):
            return "hidden: it looks like a secret"
        return ""

    def _excluded(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude)

    def _variables(self) -> list[tuple[str, Any]]:
        return [(str(name), value) for name, value in list(self.namespace.items()) if isinstance(name, str)]

    def _secret_texts(self) -> list[str]:
        """The text of every variable hidden for its name or excluded: redacted wherever else it shows up
        (a cell's source, a dict's repr, a traceback). Not the kernel's own hidden names: IPython keeps every
        cell's source under one (``_i3``)."""
        texts = []
        for name, value in self._variables():
            text = as_text(value)
            if text is not None and len(text) >= _MIN_SECRET and (secret_name(name, value) or self._excluded(name)):
                texts.append(text)
        return texts

    def _listing(self) -> str:
        lines: list[str] = []
        slow: set[type] = set()
        for name, value in sorted(self._variables(), key=lambda item: item[0]):
            try:
                line = self._line(name, value, slow)
            except Exception as exc:  # whatever an object does, the others are still listed
                line = f"{name}: (could not be read: {type(exc).__name__})"
            if line is None:
                continue
            if len(lines) == MAX_VARIABLES:
                lines.append("[... more variables not listed: describe_variable reads any by name]")
                break
            lines.append(line)
        return "\n".join(lines) if lines else "(no variables yet)"

    def _line(self, name: str, value: Any, slow: set[type]) -> str | None:
        why = self.shown(name, value)
        if why is None:
            return None
        if why:
            return f"{name}: {type_name(value)} ({why})"
        try:
            size = guarded("len()", lambda: size_of(value))
        except Failed as exc:
            size = f"size unknown: {exc}"
        preview = None if _without_preview(value) else short_repr(value, 80, slow)
        details = ", ".join(part for part in (size, f"= {preview}" if preview else "") if part)
        return f"{name}: {type_name(value)}" + (f" ({details})" if details else "")

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
        if isinstance(number, str) and number.strip().isdigit():
            number = int(number)  # as the tool's own argument check would take it
        if isinstance(number, bool) or not isinstance(number, int):
            return "The cell number must be a whole number."
        if part == "source":
            inputs = self.namespace.get("In")
            if not isinstance(inputs, list):
                return "This session keeps no cell history (it is not a notebook or IPython)."
            if not 0 < number < len(inputs):
                return f"No cell [{number}] in this session's history."
            return f"Cell [{number}]:\n{inputs[number]}"
        if part == "output":
            outputs = self.namespace.get("Out")
            if not isinstance(outputs, dict):
                return "This session keeps no cell outputs (it is not a notebook or IPython)."
            if number not in outputs:
                return f"Cell [{number}] returned no value (what it printed is not kept)."
            value = outputs[number]
            if any(value is other and self.shown(n, other) != "" for n, other in self._variables()):
                return f"Cell [{number}] returned a value that is not shown (hidden, excluded, or a secret)."
            if self.shown(f"Out[{number}]", value) != "":
                return f"Cell [{number}] returned a value that is not shown (it looks like a secret)."
            return f"Out[{number}]: {type_name(value)}\n" + (
                describe(f"Out[{number}]", value) if _without_preview(value) else short_repr(value, 3_000) or ""
            )
        return 'part must be "source" or "output".'

    def _error(self) -> str:
        text = self.last_error() if self.last_error is not None else _last_exception()
        return text or "No error in this session yet."


def check_allow_run(allow_run: Any) -> None:
    if not (allow_run is False or allow_run is True or allow_run == YES):
        raise ValueError(f"allow_run must be False, True (ask before each snippet) or 'yes', not {allow_run!r}.")


def workspace_of(context: Any, allow_run: Any = None) -> Workspace | None:
    """The workspace ``context=`` names: True (the running program's namespace), a mapping, or a
    :class:`Workspace`; None for False or None. ``allow_run``, when given, says whether it may run code."""
    if allow_run is not None:
        check_allow_run(allow_run)
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
    return workspace if allow_run is None else replace(workspace, allow_run=allow_run)


def _ours(value: Any) -> bool:
    """This package's own results (what a cell's --out keeps): not the user's data."""
    module = getattr(type(value), "__module__", None)
    return isinstance(module, str) and module.startswith("claude_force_nb.")


def _without_preview(value: Any) -> bool:
    """Frames and arrays (their repr is a table), sets (their order changes between runs), classes, functions
    and modules (their type says what they are): described, never previewed in a listing."""
    kind = type(value)
    if issubclass(kind, (set, frozenset, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return True
    if issubclass(kind, types.ModuleType):
        return True
    module = getattr(kind, "__module__", None)
    return isinstance(module, str) and module.split(".")[0] in ("pandas", "numpy", "polars")


def _last_exception() -> str | None:
    """The interpreter's last uncaught error (IPython keeps it there too), with its innermost frames."""
    error = getattr(sys, "last_value", None)
    if error is None:
        return None
    lines = traceback.format_exception(type(error), error, error.__traceback__, limit=-_INNERMOST_FRAMES)
    return "".join(lines)
