"""The offline endpoint: this process's local Messages API server, started on first use.

The orchestrator hands :func:`local_endpoint` to the backend it builds, so
the engine (pipeline, API, batches, cache) never imports the simulator: a
backend only knows that, offline, some function gives it a URL to use.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from ._config import ENV_API_KEY

if TYPE_CHECKING:
    from .simulator import LocalServer

OFFLINE_NOTICE = (
    f"claude-force-nb: {ENV_API_KEY} is not set, so answers are synthetic, from the local "
    f"Messages API server on 127.0.0.1. Set {ENV_API_KEY} (then %reload_ext claude_force_nb, or restart) "
    "to talk to Claude."
)

# One server per process: every orchestrator of a kernel shares it, as they share its answers.
_lock = threading.Lock()
_server: LocalServer | None = None


def local_endpoint(latency: float, *, announce: bool = True) -> str:
    """URL of this process's local Messages API server, started (with ``latency`` per answer) on first use."""
    global _server
    with _lock:
        if _server is None:
            from .simulator import LocalServer

            _server = LocalServer(latency=latency).start()
            if announce:
                print(OFFLINE_NOTICE, file=sys.stderr)
        return _server.url
