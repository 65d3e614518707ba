"""The cache an orchestrator opens when it is given none: two files in the home directory, or one named."""

from __future__ import annotations

import os

from .. import _checks as checks
from .._config import DEFAULT_CACHE_MAXSIZE, DEFAULT_CACHE_TTL_HOURS, Settings
from .._pricing import CostOf
from .database import CACHE_FILENAME, OFFLINE_CACHE_FILENAME
from .response import ResponseCache
from .store import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS


def default_cache(
    settings: Settings,
    price: CostOf,
    *,
    path: str | os.PathLike | None = None,
    ttl_hours: float | None = None,
    maxsize: int = DEFAULT_CACHE_MAXSIZE,
    mode: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    url: str | None = None,
) -> ResponseCache:
    """The response cache for ``settings``: answers at ``path``, else in the home directory's files.

    The file that holds Claude's answers never takes a local server's
    synthetic ones: those (offline, or from ``ANTHROPIC_BASE_URL`` pointing at
    such a server) go to the offline file beside it. Both are read, whoever
    asks: outside replay an answer is only served to its own endpoint anyway,
    and replay (CI without a key, say) then finds recordings in either. A
    file the caller names takes both kinds, each row saying which it holds.
    """
    ttl_hours = DEFAULT_CACHE_TTL_HOURS if ttl_hours is None else ttl_hours
    ttl_hours = checks.seconds("cache_ttl_hours", ttl_hours, infinite=True)
    synthetic_path = None
    if path is None:
        path = settings.home / CACHE_FILENAME
        synthetic_path = settings.home / OFFLINE_CACHE_FILENAME
    return ResponseCache(
        path,
        settings=settings,
        team_url=url,
        ttl_seconds=ttl_hours * 3600,
        maxsize=maxsize,
        mode=mode or settings.cache_mode,
        price=price,
        synthetic_path=synthetic_path,
        max_rows=max_rows,
        max_bytes=max_bytes,
    )
