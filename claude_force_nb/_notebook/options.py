"""The magic line: the options %%agent and %%agents share, parsed and checked into call options."""

from __future__ import annotations

import builtins
import functools
import keyword
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from IPython.core import magic_arguments
from IPython.core.error import UsageError

from .. import _checks as checks
from .._models import resolve_model
from .._options import CallOptions
from .._render import FORMATS
from .._schema import is_schema
from .._text import printable
from .context import allow_run_words
from .media import current_figures, file_block, image_block

F = TypeVar("F", bound=Callable[..., Any])
# output_config.effort's values, as the API takes them.
EFFORTS = ("low", "medium", "high", "xhigh", "max")

_COMMON = (
    magic_arguments.argument("--max-tokens", type=int, metavar="N", help="maximum tokens in the answer"),
    magic_arguments.argument("-t", "--temperature", type=float, metavar="T", help="sampling temperature, 0 to 1"),
    magic_arguments.argument("--system", metavar="TEXT", help="system prompt to use instead of the agent's"),
    magic_arguments.argument("-f", "--format", choices=FORMATS, help="how to show answers (default markdown)"),
    magic_arguments.argument("-o", "--out", metavar="VAR", help="store the result object in VAR"),
    magic_arguments.argument("--no-cache", action="store_true", help="neither read nor write the cache"),
    magic_arguments.argument("--refresh", action="store_true", help="call the API again and overwrite the cache"),
    magic_arguments.argument("--replay", action="store_true", help="answer only from the cache; a miss is an error"),
    magic_arguments.argument("--timeout", type=float, metavar="S", help="seconds before a call is abandoned"),
    magic_arguments.argument("--raw", action="store_true", help="send the cell as is, without {name} interpolation"),
    magic_arguments.argument("--fence", action="store_true", help="wrap interpolated values as delimited data blocks"),
    magic_arguments.argument(
        "--schema", metavar="NAME", help="answer as this pydantic model or JSON-schema dict (structured output)"
    ),
    magic_arguments.argument("--tools", metavar="F,G", help="Python functions from the namespace the model may call"),
    magic_arguments.argument("--max-turns", type=int, metavar="N", help="replies a tool loop may take (default 8)"),
    magic_arguments.argument(
        "--context", action="store_true", help="let the model look at the kernel's variables, cells and last error"
    ),
    magic_arguments.argument(
        "--allow-run",
        choices=("ask", "yes"),
        help="let it run code in the kernel too: asking before each snippet, or =yes to run them without asking",
    ),
    magic_arguments.argument("--file", action="append", metavar="PATH", help="attach a PDF or text file (repeatable)"),
    magic_arguments.argument("--figure", action="store_true", help="attach the open matplotlib figures"),
    magic_arguments.argument("--thinking", action="store_true", help="let the model think first (adaptive thinking)"),
    magic_arguments.argument(
        "--effort", choices=EFFORTS, help="how much effort the answer gets (output_config.effort)"
    ),
)


def sendable_errors(magic: F) -> F:
    """Re-raise a magic's UsageError with lone surrogates escaped: one the kernel cannot send never ends the cell."""

    @functools.wraps(magic)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return magic(*args, **kwargs)
        except UsageError as exc:
            message = str(exc)
            if printable(message) == message:
                raise
            raise UsageError(printable(message)) from None

    return wrapper  # type: ignore[return-value]


def common_arguments(func: F) -> F:
    """Declare the options shared by %%agent and %%agents on a magic."""
    for argument in reversed(_COMMON):
        func = argument(func)
    return func


def split(line: str) -> list[str]:
    """The magic line's words, as a shell would split them; an unbalanced quote is a UsageError."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Cannot parse the magic line: {exc}.") from None


def strip_quiet(line: str) -> tuple[str, bool]:
    """The line without a trailing ``;``, and whether it had one (the answer is then not shown)."""
    stripped = line.rstrip()
    if stripped.endswith(";"):
        return stripped[:-1], True
    return line, False


def parse(magic: Any, line: str) -> Any:
    """Parse ``line`` with ``magic``'s declared arguments and check the shared options."""
    # shlex rather than parse_argstring, which keeps quotes: --system 'Be brief.'
    args = magic.parser.parse_args(allow_run_words(split(line)))
    try:
        if args.max_tokens is not None:
            checks.count("--max-tokens", args.max_tokens)
        if args.timeout is not None:
            checks.seconds("--timeout", args.timeout)
        if args.temperature is not None:
            checks.fraction("--temperature", args.temperature)
        if getattr(args, "concurrency", None) is not None:
            checks.count("--concurrency", args.concurrency, high=checks.MAX_CONCURRENCY)
        if args.max_turns is not None:
            checks.count("--max-turns", args.max_turns, high=100)
        if getattr(args, "budget", None) is not None:
            checks.dollars("--budget", args.budget)
        if getattr(args, "model", None) is not None:
            args.model = resolve_model(args.model)
        if getattr(args, "models", None) is not None:
            args.models = models(args.models)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if sum((args.no_cache, args.refresh, args.replay)) > 1:
        raise UsageError("Use at most one of --no-cache, --refresh and --replay.")
    if args.out is not None:
        check_variable(args.out)
    return args


def models(names: str) -> list[str]:
    """``--models a,b``: each resolved to its API id."""
    listed = [name.strip() for name in names.split(",") if name.strip()]
    if not listed:
        raise ValueError(f"--models needs at least one model name, got {names!r}.")
    return [resolve_model(name) for name in listed]


def check_variable(name: str) -> None:
    """A name ``-o`` may assign to: an identifier, not a keyword, not one IPython keeps; a builtin gets a note."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"-o/--out needs a variable name, got {name!r}.")
    if name in _IPYTHON_NAMES or _KEPT_BY_IPYTHON.fullmatch(name):
        raise UsageError(f"-o/--out cannot use {name}: IPython keeps that name for itself; choose another.")
    if hasattr(builtins, name):
        print(f"Note: -o {name} hides Python's built-in {name} in this notebook (del {name} brings it back).")


# Names the shell reads or rewrites: magics run through get_ipython(), every
# output lands in _ and Out, and dunders such as __builtins__ hold the language.
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_ih", "_oh", "_dh"})
_KEPT_BY_IPYTHON = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|__\w+__")


def schema_from(name: str, namespace: Mapping[str, Any]) -> Any:
    """``--schema NAME``: a pydantic model class or a JSON-schema dict from the namespace."""
    if name not in namespace:
        raise UsageError(f"--schema {name}: no variable named {name!r} in the namespace.")
    value = namespace[name]
    if not is_schema(value):
        raise UsageError(
            f"--schema {name}: expected a pydantic model class or a JSON-schema dict, got {type(value).__name__}."
        )
    return value


def call_options(args: Any, namespace: Mapping[str, Any] | None = None, context: Any = None) -> CallOptions:
    """The call options the shared magic options name (``namespace`` resolves ``--schema`` and ``--tools``;
    ``context`` is the workspace ``--context`` gives)."""
    mode = "no-cache" if args.no_cache else "refresh" if args.refresh else "replay" if args.replay else None
    params: dict[str, Any] = {}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.thinking:
        params["thinking"] = {"type": "adaptive"}
    if args.effort:
        params["output_config"] = {"effort": args.effort}
    return CallOptions(
        max_tokens=args.max_tokens,
        system=args.system,
        cache_mode=mode,
        timeout=args.timeout,
        schema=schema_from(args.schema, namespace or {}) if args.schema else None,
        tools=tuple(tools_from(args.tools, namespace or {})) if args.tools else (),
        max_turns=args.max_turns,
        context=context,
        params=params,
    )


def attached(args: Any) -> list[dict[str, Any]]:
    """The blocks ``--file`` and ``--figure`` attach: documents, then the open figures as images."""
    blocks = [file_block(path) for path in args.file or ()]
    if args.figure:
        figures = current_figures()
        if not figures:
            raise UsageError(
                "--figure: no matplotlib figure is open. The inline backend closes a cell's figures when it ends: "
                "keep the figure in a variable and write {fig}, or %config InlineBackend.close_figures = False."
            )
        for label, figure in figures:
            block, note = image_block(figure, label)
            blocks.append(block)
            if note:
                print(f"Note: {note}")
    return blocks


def tools_from(names: str, namespace: Mapping[str, Any]) -> list[Any]:
    """``--tools f,g``: callables from the namespace."""
    return functions_from("--tools", names, namespace)


def functions_from(option: str, names: str, namespace: Mapping[str, Any]) -> list[Any]:
    """``OPTION f,g``: the functions of those names in the namespace; a UsageError naming the option otherwise."""
    found = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if name not in namespace:
            raise UsageError(f"{option} {name}: no function named {name!r} in the namespace.")
        if not callable(namespace[name]):
            raise UsageError(f"{option} {name}: {type(namespace[name]).__name__} is not callable; pass a function.")
        found.append(namespace[name])
    if not found:
        raise UsageError(f"{option} needs at least one function name, got {names!r}.")
    return found
