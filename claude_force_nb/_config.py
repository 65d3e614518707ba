"""Defaults and the one place that reads the environment.

Configuration flows one way: explicit argument (magic flag) -> ``%config``
traitlet -> environment -> the ``DEFAULT_*`` constants here.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

# Named once: every other module imports it from here.
DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_MAX_CONCURRENT = 10
DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_CACHE_TTL_HOURS = 24.0
DEFAULT_CACHE_MAXSIZE = 4096
DEFAULT_CACHE_MODE = "normal"
CACHE_MODES = ("normal", "refresh", "no-cache", "replay")
# The offline server answers after a realistic pause so that concurrency
# and caching show the same shape of gains they have against Claude.
DEFAULT_SIMULATOR_LATENCY = 0.3
MAX_SIMULATOR_LATENCY = 600.0  # the SDK's default timeout; longer only hangs the caller

ENV_API_KEY = "ANTHROPIC_API_KEY"
ENV_AUTH_TOKEN = "ANTHROPIC_AUTH_TOKEN"
ENV_BASE_URL = "ANTHROPIC_BASE_URL"
ENV_HOME = "CLAUDE_FORCE_NB_HOME"
ENV_MODEL = "CLAUDE_FORCE_NB_MODEL"
ENV_CACHE_MODE = "CLAUDE_FORCE_NB_CACHE_MODE"
ENV_SECRET = "CLAUDE_CACHE_SECRET"
ENV_OLD_SECRETS = "CLAUDE_CACHE_OLD_SECRETS"
ENV_SIMULATOR_LATENCY = "CLAUDE_FORCE_NB_SIMULATOR_LATENCY"
ENV_CACHE_URL = "CLAUDE_FORCE_NB_CACHE_URL"


@dataclass(frozen=True)
class Settings:
    """What the environment says; built by :meth:`from_env`."""

    api_key: str | None = field(default=None, repr=False)
    auth_token: str | None = field(default=None, repr=False)  # Bearer token, e.g. behind a gateway
    base_url: str | None = None
    home: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("claude-force-nb")))
    model: str = DEFAULT_MODEL
    cache_mode: str = DEFAULT_CACHE_MODE
    # Newest first: sign with the first, verify with any.
    cache_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    user_home: Path = field(default_factory=Path.home)
    simulator_latency: float = DEFAULT_SIMULATOR_LATENCY
    cache_url: str | None = field(default=None, repr=False)  # a team database; its password is never shown

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        secrets = []
        if env.get(ENV_SECRET):
            secrets.append(env[ENV_SECRET].encode())
        secrets.extend(s.encode() for s in env.get(ENV_OLD_SECRETS, "").split(",") if s.strip())
        home = env.get(ENV_HOME)
        mode = env.get(ENV_CACHE_MODE) or DEFAULT_CACHE_MODE
        if mode not in CACHE_MODES:
            raise ValueError(f"{ENV_CACHE_MODE}={mode!r} is not one of {', '.join(CACHE_MODES)}.")
        return cls(
            api_key=env.get(ENV_API_KEY) or None,
            auth_token=env.get(ENV_AUTH_TOKEN) or None,
            base_url=env.get(ENV_BASE_URL) or None,
            home=user_path(home) if home else Path(platformdirs.user_data_dir("claude-force-nb")),
            model=env.get(ENV_MODEL) or DEFAULT_MODEL,
            cache_mode=mode,
            cache_secrets=tuple(secrets),
            user_home=Path(env.get("HOME") or Path.home()),
            simulator_latency=_latency(env),
            cache_url=env.get(ENV_CACHE_URL) or None,
        )


# Environment variables whose values the process keeps to itself (ANTHROPIC_API_KEY, PGPASSWORD...), and
# how long a value must be to be looked for in what --context shows.
_SECRET_ENV = re.compile(r"(?i)(key|secret|token|passw(or)?d|credential)")
MIN_SECRET_CHARS = 8


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the environment's secret-named variables; read each time, so a key set later counts."""
    env = os.environ if environ is None else environ
    return [value for name, value in env.items() if _SECRET_ENV.search(name) and len(value) >= MIN_SECRET_CHARS]


def user_path(path: str | os.PathLike[str]) -> Path:
    """A path setting as people type it: ``~`` and ``~user`` mean a home directory, as in a shell."""
    return Path(path).expanduser()


def _latency(env: Mapping[str, str]) -> float:
    raw = env.get(ENV_SIMULATOR_LATENCY)
    if not raw:
        return DEFAULT_SIMULATOR_LATENCY
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_SIMULATOR_LATENCY:
        raise ValueError(
            f"{ENV_SIMULATOR_LATENCY}={raw!r} must be a number of seconds from 0 to {MAX_SIMULATOR_LATENCY:g}."
        )
    return seconds
