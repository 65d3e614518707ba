"""A local server that speaks the Messages API and answers with synthetic text.

No network and no API key needed: point the SDK's ``base_url`` at
``LocalServer().start().url``. Answers are deterministic and say plainly that
they are synthetic. ``faults`` injects rate limits, overloads, timeouts and
dropped connections; ``rate_limits`` enforces requests and tokens per minute
with the API's headers and 429s; ``log`` records every request.

The Message Batches endpoints work as ``client.messages.batches`` expects:
a batch processes over ``batch_seconds`` on the server clock, and
``batch_outcomes`` makes chosen requests error or expire. Prompt caching is
modelled for cost tests: ``cache_control`` breakpoints, the per-model
minimums in ``MINIMUM_CACHEABLE``, 5-minute and 1-hour TTLs, and usage that
reports tokens written to and read from the cache.

A notebook's richer requests are checked and answered as the API does:
image and document blocks (sized from their headers, counted in tokens and
named in the answer), JSON schemas for structured outputs (answered with
JSON that follows them), tools (a ``tool_use`` round, ``tool_turns`` per
task, then a final answer; message threads, as the SDK's tool runner uses
them), multi-turn conversations, thinking and effort.
"""

from ._caching import MINIMUM_CACHEABLE
from ._faults import FAULT_KINDS, Fault, Faults
from ._http import LATENCY_HEADER
from ._limits import RateLimits
from ._outcomes import OUTCOME_KINDS as BATCH_OUTCOME_KINDS
from ._outcomes import BatchOutcomes
from ._server import LocalServer
from ._state import RequestRecord, ServerState

__all__ = [
    "BATCH_OUTCOME_KINDS",
    "FAULT_KINDS",
    "LATENCY_HEADER",
    "MINIMUM_CACHEABLE",
    "BatchOutcomes",
    "Fault",
    "Faults",
    "LocalServer",
    "RateLimits",
    "RequestRecord",
    "ServerState",
]
