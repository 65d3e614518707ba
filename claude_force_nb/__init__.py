"""Run Claude agents concurrently from Jupyter and Python, with a signed response cache.

``%load_ext claude_force_nb`` in IPython registers the ``%%agent`` and
``%%agents`` magics; :class:`AsyncAgentOrchestrator` is the Python API under them.
"""

from __future__ import annotations

from typing import Any

from ._agents import Agent, AgentRegistry
from ._cache import CacheStats, ResponseCache
from ._call import Call
from ._config import DEFAULT_MODEL
from ._conversation import Conversation
from ._errors import (
    AgentError,
    AgentFileError,
    AgentNotFoundError,
    BudgetExceededError,
    CacheError,
    CacheFileError,
    CacheIntegrityWarning,
    CacheMissError,
    CallError,
    CallTimeoutError,
    ClaudeForceError,
    ClaudeForceWarning,
    ModelNotFoundError,
    QualityGateError,
    SchemaError,
)
from ._eval.check import Check
from ._eval.grade import Grade
from ._options import CallOptions
from ._orchestrator import AsyncAgentOrchestrator
from ._pricing import Price
from ._results import AgentResult, Score
from ._resultset import Results
from ._sweep import Batch, Progress

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Agent",
    "AgentError",
    "AgentFileError",
    "AgentNotFoundError",
    "AgentRegistry",
    "AgentResult",
    "AsyncAgentOrchestrator",
    "Batch",
    "BudgetExceededError",
    "CacheError",
    "CacheFileError",
    "CacheIntegrityWarning",
    "CacheMissError",
    "CacheStats",
    "Call",
    "CallError",
    "CallOptions",
    "CallTimeoutError",
    "Check",
    "ClaudeForceError",
    "ClaudeForceWarning",
    "Conversation",
    "Grade",
    "ModelNotFoundError",
    "Price",
    "Progress",
    "QualityGateError",
    "ResponseCache",
    "Results",
    "SchemaError",
    "Score",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext claude_force_nb``)."""
    from ._notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and release their resources (``%unload_ext claude_force_nb``)."""
    from ._notebook.magics import unload

    unload(ipython)
