"""A local server that speaks the Messages API and answers with synthetic text.

No network and no API key needed: point the SDK's ``base_url`` at
``LocalServer().start().url``. Answers are deterministic and say plainly that
they are synthetic. ``faults`` injects rate limits, overloads, timeouts and
dropped connections; ``rate_limits`` enforces requests and tokens per minute
with the API's headers and 429s; ``log`` records every request.
"""

from ._faults import FAULT_KINDS, Fault, Faults
from ._http import LATENCY_HEADER
from ._limits import RateLimits
from ._server import LocalServer
from ._state import RequestRecord, ServerState

__all__ = [
    "FAULT_KINDS",
    "LATENCY_HEADER",
    "Fault",
    "Faults",
    "LocalServer",
    "RateLimits",
    "RequestRecord",
    "ServerState",
]
