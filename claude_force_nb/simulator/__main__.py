"""``python -m claude_force_nb.simulator``: serve synthetic Messages API answers until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._limits import RateLimits
from ._server import LocalServer
from ._state import DEFAULT_BATCH_EXPIRY_SECONDS, DEFAULT_BATCH_SECONDS
from ._tools import DEFAULT_TOOL_TURNS

DEFAULT_PORT = 8765


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claude_force_nb.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (default: %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any key)")
    limits = parser.add_argument_group("rate limits", "enforced as the API does, with its headers and 429s")
    limits.add_argument("--rpm", type=int, help="requests per minute")
    limits.add_argument("--itpm", type=int, help="input tokens per minute")
    limits.add_argument("--otpm", type=int, help="output tokens per minute")
    limits.add_argument("--minute", type=float, default=60.0, help="seconds a minute lasts (default: %(default)s)")
    batches = parser.add_argument_group("message batches", "processed on the server clock; no background work")
    batches.add_argument(
        "--batch-seconds",
        type=float,
        default=DEFAULT_BATCH_SECONDS,
        help="seconds a batch takes from creation to end, its requests finishing evenly over it (default: %(default)s)",
    )
    batches.add_argument(
        "--batch-expiry-seconds",
        type=float,
        default=DEFAULT_BATCH_EXPIRY_SECONDS,
        help="seconds after creation at which an unfinished batch expires (default: %(default)s, 24 hours)",
    )
    parser.add_argument(
        "--tool-turns",
        type=int,
        default=DEFAULT_TOOL_TURNS,
        help="rounds of tool calls a task gets before its final answer (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        rate_limits = RateLimits(args.rpm, args.itpm, args.otpm, args.minute)
        server = LocalServer(
            args.host,
            args.port,
            args.latency,
            api_key=args.api_key,
            rate_limits=rate_limits,
            batch_seconds=args.batch_seconds,
            batch_expiry_seconds=args.batch_expiry_seconds,
            tool_turns=args.tool_turns,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server.start()
    except OSError as exc:
        parser.exit(1, f"Cannot listen on {args.host}:{args.port}: {exc.strerror}. Pick another --port.\n")
    done = threading.Event()
    # Ctrl-C and SIGTERM (kill, subprocess.terminate()) both just end the wait, so no
    # KeyboardInterrupt can land halfway through start-up or shutdown. A SIGINT that the
    # parent chose to ignore (a background job) stays ignored.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        print(f"Serving synthetic Messages API answers (not Claude) at {server.url} - Ctrl-C to stop.", flush=True)
        if rate_limits.any:
            print(f"Rate limits: {_describe(rate_limits)}.", flush=True)
        done.wait()
    finally:
        server.stop()
    return 0


def _describe(limits: RateLimits) -> str:
    named = [
        (limits.requests, "requests"),
        (limits.input_tokens, "input tokens"),
        (limits.output_tokens, "output tokens"),
    ]
    minute = "minute" if limits.minute == 60 else f"{limits.minute:g} s"
    return ", ".join(f"{value:,} {name}" for value, name in named if value is not None) + f" per {minute}"


if __name__ == "__main__":
    sys.exit(main())
