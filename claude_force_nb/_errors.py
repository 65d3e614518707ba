"""Exceptions raised by claude_force_nb.

The tree::

    ClaudeForceError
    ├── AgentError
    │   ├── AgentNotFoundError     unknown agent name (lists the available ones)
    │   └── AgentFileError         an agent file that cannot be parsed
    ├── ModelNotFoundError         a model name that is neither an alias nor a Claude model id
    ├── CallError                  an API call failed (keeps the SDK exception as __cause__)
    │   └── CallTimeoutError       the per-call timeout ran out
    ├── SchemaError                an answer does not match the schema asked for (billed, not kept)
    ├── BudgetExceededError        a sweep's estimate or spend passed its budget: nothing more is sent
    ├── QualityGateError           require() found scores below the bar (lists each agent × model cell)
    └── CacheError
        ├── CacheMissError         replay mode found no cached answer
        └── CacheFileError         the cache file could not be opened or rebuilt

    ClaudeForceWarning (UserWarning)
    └── CacheIntegrityWarning      rows failed their signature check; a file was set aside

Every message names the fix. The original exception is always chained, never
flattened into a string.
"""

from __future__ import annotations

from typing import Any


class ClaudeForceError(Exception):
    """Base class for every error this package raises."""


class AgentError(ClaudeForceError):
    """A problem with an agent definition or name."""


class AgentNotFoundError(AgentError, KeyError):
    """No agent with the requested name."""

    def __init__(
        self,
        name: str,
        available: list[str],
        suggestion: str | None = None,
        skipped: dict[str, str] | None = None,
    ):
        self.name = name
        self.available = available
        self.suggestion = suggestion
        self.skipped = skipped or {}  # agent files that were skipped: path -> why
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        listing = ", ".join(available) if available else "none"
        message = f"Unknown agent {name!r}.{hint} Available: {listing}."
        if self.skipped:
            # A file named after the agent first: it is most likely the one meant.
            paths = sorted(self.skipped, key=lambda p: not p.endswith(f"/{name}.md"))
            message += " Skipped files: " + "; ".join(self.skipped[p] for p in paths[:3])
            if len(paths) > 3:
                message += f"; and {len(paths) - 3} more (%agent list)"
            message += "."
        super().__init__(message)

    # KeyError quotes its message; keep it readable.
    __str__ = Exception.__str__


class AgentFileError(AgentError, ValueError):
    """An agent file whose front matter is malformed; ``line`` is where, when known."""

    def __init__(self, message: str, *, line: int | None = None):
        super().__init__(message)
        self.line = line


class ModelNotFoundError(ClaudeForceError, ValueError):
    """A model name that is not an alias, a known model, or shaped like a Claude model id."""

    def __init__(self, name: str, suggestion: str | None = None, *, setting: str | None = None):
        self.name = name
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        where = f" (from {setting})" if setting else ""
        super().__init__(
            f"Unknown model {name!r}{where}.{hint} Use an alias (opus, sonnet, haiku) or a Claude model id (claude-…)."
        )


class CallError(ClaudeForceError):
    """An API call failed; ``__cause__`` holds the SDK exception."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None):
        self.status = status
        self.request_id = request_id
        super().__init__(message)


class CallTimeoutError(CallError, TimeoutError):
    """A call did not finish within its timeout."""


class SchemaError(ClaudeForceError, ValueError):
    """The answer does not match the schema asked for; ``__cause__`` holds the validation error.

    ``completion`` is the answer, when there was one: it was billed even though it is refused.
    """

    completion: Any = None


class BudgetExceededError(ClaudeForceError):
    """A sweep's spending would pass (or has passed) its budget: the calls it concerns were not sent."""


class QualityGateError(ClaudeForceError):
    """A scored sweep fell below the bar ``require()`` set; the message lists each cell below it."""


class CacheError(ClaudeForceError):
    """A problem with the response cache."""


class CacheMissError(CacheError, LookupError):
    """Replay mode was asked for an answer that is not cached."""


class CacheFileError(CacheError, OSError):
    """The cache file could not be opened, even after setting it aside.

    ``problem`` is what went wrong without the advice, for callers (the
    magics) that give their own.
    """

    def __init__(self, message: str, *, problem: str | None = None):
        super().__init__(message)
        self.problem = problem or message

    __str__ = Exception.__str__


class ClaudeForceWarning(UserWarning):
    """Base class for this package's warnings."""


class CacheIntegrityWarning(ClaudeForceWarning):
    """Cached rows were rejected, or a damaged cache file was set aside."""
