"""The magic line: the options %%agent and %%agents share, parsed and checked into call options."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core import magic_arguments
from IPython.core.error import UsageError

from .render import FORMATS

F = TypeVar("F", bound=Callable[..., Any])

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
)


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
    args = magic.parser.parse_args(split(line))
    for flag in ("max_tokens", "timeout"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value:g}.")
    if args.temperature is not None and not 0 <= args.temperature <= 1:
        raise UsageError(f"--temperature must be between 0 and 1, got {args.temperature:g}.")
    if sum((args.no_cache, args.refresh, args.replay)) > 1:
        raise UsageError("Use at most one of --no-cache, --refresh and --replay.")
    if args.out is not None and not args.out.isidentifier():
        raise UsageError(f"-o/--out needs a variable name, got {args.out!r}.")
    return args


def call_options(args: Any) -> dict[str, Any]:
    """The orchestrator's per-call options from parsed shared options."""
    mode = "no-cache" if args.no_cache else "refresh" if args.refresh else "replay" if args.replay else None
    return {
        "max_tokens": args.max_tokens,
        "system": args.system,
        "cache_mode": mode,
        "timeout": args.timeout,
        "temperature": args.temperature,
    }
