"""``python -m claude_force_nb.simulator``: serve synthetic Messages API answers until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._server import LocalServer

DEFAULT_PORT = 8765


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claude_force_nb.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (default: %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any key)")
    args = parser.parse_args(argv)

    try:
        server = LocalServer(args.host, args.port, args.latency, api_key=args.api_key).start()
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
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
