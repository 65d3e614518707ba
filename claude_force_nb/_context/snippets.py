"""``--allow-run``: the one tool that may change the kernel, running only what the user lets run.

Each snippet is shown before it runs and its result after (through
``show``). Asked (``ask=True``), the user confirms each one (``confirm``
returns True to run it); a front end that cannot ask (nbclient, papermill, a
script without a terminal) makes the snippet refused with the fix, unless the
run was allowed without asking (``--allow-run=yes``). A snippet runs in the
namespace with a time limit; what it raises, or its limit, goes back to the
model as its result, and the kernel goes on. Snippets run only on the main
thread, where the time limit is an interrupt: a thread cannot be stopped, and
one left running would go on changing the namespace.
"""

from __future__ import annotations

import ast
import contextlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .limits import TimeLimit, limited, on_main_thread
from .show import MAX_CHARS, cut, final, repr_or_why

DEFAULT_SECONDS = 30.0
CANNOT_ASK = (
    "The snippet did not run: this front end cannot ask the user to confirm it (no one can answer input()). "
    "Re-run with --allow-run=yes (allow_run='yes') to let snippets run without asking."
)
DECLINED = "The user declined to run this snippet."
OFF_MAIN_THREAD = (
    "The snippet did not run: snippets run only on the program's main thread, where a time limit can stop "
    "them, and this call runs on another."
)
# What the model is told of a snippet that did not run: an answer built on one is never served from the cache.
NOT_RUN = (CANNOT_ASK, DECLINED, OFF_MAIN_THREAD)
# What a snippet may print before the rest is counted, not kept.
MAX_PRINTED = MAX_CHARS // 2


class CannotAsk(Exception):
    """No one can answer a confirmation here."""


def ask_with_input(code: str) -> bool:
    """Ask on the front end's input line (Jupyter's, or a terminal's); :class:`CannotAsk` where none answers."""
    try:
        answer = input("Run this snippet in the kernel? [y/N] ")
    except (EOFError, OSError) as exc:
        raise CannotAsk(str(exc)) from exc
    except Exception as exc:  # IPython's StdinNotImplementedError: a client that takes no input
        if type(exc).__name__ == "StdinNotImplementedError":
            raise CannotAsk(str(exc)) from exc
        raise
    return answer.strip().lower() in ("y", "yes")


@dataclass
class Runner:
    """Runs the model's snippets: asking first (``ask``) through ``confirm``, within ``seconds`` each."""

    ask: bool = True
    confirm: Callable[[str], bool] = ask_with_input
    show: Callable[[str], None] = print
    seconds: float = DEFAULT_SECONDS

    def tool(self, namespace: Mapping[str, Any]) -> Callable[..., Any]:
        runner = self

        async def run_python(code: str) -> str:
            """Run Python code in the user's session and get what it printed and the value of its last
            expression. It can read and change the user's variables; the user may be asked to allow it."""
            return runner.run(code, namespace)

        return run_python

    def run(self, code: str, namespace: Mapping[str, Any]) -> str:
        """What the model gets back for ``code``: its output and value, its error, or why it did not run."""
        self.show(f"Claude asks to run this in the kernel:\n{visible(code)}")
        if not on_main_thread():
            self.show(OFF_MAIN_THREAD)
            return OFF_MAIN_THREAD
        if self.ask:
            try:
                allowed = self.confirm(code)
            except CannotAsk:
                self.show(CANNOT_ASK)
                return CANNOT_ASK
            if not allowed:
                self.show("Not run: the user declined.")
                return DECLINED
        result = final(self._execute(code, namespace))
        self.show(f"It ran. Result:\n{visible(result)}")
        return result

    def _execute(self, code: str, namespace: Mapping[str, Any]) -> str:
        try:
            tree = ast.parse(code, "<snippet>", "exec")
        except SyntaxError as exc:
            return f"SyntaxError: {exc.msg} (line {exc.lineno})"
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()  # evaluated apart, for its value
        else:
            last = None
        if not isinstance(namespace, dict):
            return "This namespace cannot run code (it is read-only)."
        printed = _Bounded(MAX_PRINTED)

        def execute() -> Any:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                exec(compile(tree, "<snippet>", "exec"), namespace)
                if last is not None:
                    return eval(compile(ast.Expression(last.value), "<snippet>", "eval"), namespace)
                return None

        try:
            value = limited(execute, self.seconds)
        except TimeLimit as exc:
            return _with_output(printed, f"Stopped: {exc}.")
        except (Exception, SystemExit) as exc:  # sys.exit() ends the snippet, not the call
            return _with_output(printed, f"{type(exc).__name__}: {exc}")
        shown = "" if value is None else f"value: {repr_or_why(value, MAX_CHARS // 2)}"
        return _with_output(printed, shown) or "(ran; no output and no value)"


def visible(text: str) -> str:
    """``text`` as it is shown to the user: control characters escaped, so none can hide or rewrite what
    follows it (a terminal's escape sequences, a carriage return)."""
    return "".join(c if c in "\n\t" or c.isprintable() else f"\\x{ord(c):02x}" for c in text)


class _Bounded(io.StringIO):
    """What a snippet prints: the first ``limit`` characters kept, the rest only counted."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def write(self, text: str) -> int:
        room = self.limit - self.tell()
        if room > 0:
            super().write(text[:room])
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)


def _with_output(printed: _Bounded, tail: str) -> str:
    output = printed.getvalue()
    if printed.dropped:
        output += f"\n[... {printed.dropped:,} more characters printed, not kept]"
    parts = [f"printed:\n{cut(output, MAX_PRINTED + 100)}" if output else "", tail]
    return "\n".join(part for part in parts if part)
