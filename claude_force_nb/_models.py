"""Model names as people type them: aliases, dotted versions and full ids, resolved in one place.

Every place a model can be named (the magic line, ``--models``, agent front
matter, ``%config``, the environment, the Python API) goes through
:func:`resolve_model`, so ``-m opus`` sends the id the API knows. A name that
is neither known nor shaped like a Claude model id is an error naming the
closest known one; a ``claude-…`` id that is not in the table yet is sent as
typed, with a note, so new models work before this table knows them.
"""

from __future__ import annotations

import difflib
import re
import warnings

from ._config import DEFAULT_MODEL
from ._errors import ClaudeForceWarning, ModelNotFoundError

# The ids the Messages API serves (the SDK's own list, anthropic 2.14), newest first.
KNOWN_MODELS = (
    "claude-fable-5-2",
    "claude-mythos-5-2",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-1",
    "claude-mythos-5-1",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-mythos-preview",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
)
# Models that answer any temperature, top_p or top_k with a 400 (Opus 4.7 and
# later, every 5.x model, Mythos Preview). The others take one of temperature
# and top_p, not both.
REJECTS_SAMPLING = frozenset(
    {
        "claude-fable-5-2",
        "claude-mythos-5-2",
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-fable-5-1",
        "claude-mythos-5-1",
        "claude-fable-5",
        "claude-mythos-5",
        "claude-opus-5",
        "claude-sonnet-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-mythos-preview",
    }
)
# The shortest prompt prefix, in tokens, that each model's prompt cache takes (the API's prompt
# caching guide, "Cache limitations"); a shorter one is sent unmarked and billed as plain input.
# Fable and Mythos 5.2 are not listed there yet and take their family's figure.
MINIMUM_CACHEABLE_TOKENS = {
    "claude-fable-5-2": 512,
    "claude-mythos-5-2": 512,
    "claude-opus-5-5": 512,
    "claude-sonnet-5-5": 512,
    "claude-haiku-5-5": 512,
    "claude-fable-5-1": 512,
    "claude-mythos-5-1": 512,
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    "claude-opus-5": 512,
    "claude-sonnet-5": 1024,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 2048,
    "claude-mythos-preview": 2048,
    "claude-opus-4-6": 4096,
    "claude-sonnet-4-6": 1024,
    "claude-haiku-4-5": 4096,
    "claude-haiku-4-5-20251001": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-5-20251101": 4096,
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4-5-20250929": 1024,
}
DEFAULT_MINIMUM_CACHEABLE_TOKENS = 1024
# Claude Code's aliases, pointing at the generation this package defaults to:
# the newest that still takes sampling parameters. Name a full id
# (claude-sonnet-5-5) for another generation.
ALIASES = {
    "opus": "claude-opus-4-6",
    "sonnet": DEFAULT_MODEL,
    "haiku": "claude-haiku-4-5",
}
# Front matter only: "inherit" means the caller's default model.
INHERIT = "inherit"

_CLAUDE_ID = re.compile(r"claude-[a-z0-9]+(?:-[a-z0-9]+)*")
_noted: set[str] = set()


def resolve_model(name: str) -> str:
    """The API id for ``name``: an alias, a known id, or a ``claude-…`` id; else :class:`ModelNotFoundError`."""
    typed = name
    name = name.strip().lower()
    if name in ALIASES:
        return ALIASES[name]
    if name in KNOWN_MODELS:
        return name
    # "claude-opus-4.6", "opus-4-6", "Sonnet 4.6": the same model under the API's spelling.
    spelled = re.sub(r"[\s.]+", "-", name)
    if not spelled.startswith("claude-"):
        spelled = "claude-" + spelled
    if spelled in KNOWN_MODELS:
        return spelled
    close = _closest(spelled)
    if _CLAUDE_ID.fullmatch(name):
        if name not in _noted:
            _noted.add(name)
            hint = f" (did you mean {close!r}?)" if close else ""
            warnings.warn(
                f"Model {name!r} is not in claude-force-nb's table{hint}; it is sent as typed, and its cost "
                "shows as unknown.",
                ClaudeForceWarning,
                stacklevel=2,
            )
        return name
    raise ModelNotFoundError(typed, close)


def _closest(name: str) -> str | None:
    # Compared without the shared "claude-" prefix, which would make every name look close.
    short = {model.removeprefix("claude-"): model for model in KNOWN_MODELS} | {alias: alias for alias in ALIASES}
    close = difflib.get_close_matches(name.removeprefix("claude-"), short, n=1, cutoff=0.6)
    return short[close[0]] if close else None
