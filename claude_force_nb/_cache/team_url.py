"""A team database's connection string: where it points, for people (never its password), and the pool's
messages about this package's own connections kept quiet (their outage is said once, by the team store)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._errors import CacheError

POOL_NAME = "claude-force-nb-team"


def parse(parse: Callable[[str], dict[str, Any]], url: str) -> dict[str, Any]:
    """The URL's parts; a CacheError, outside the parser's own exception (which may quote the URL), if unreadable."""
    try:
        parts: dict[str, Any] | None = parse(url)
    except Exception:
        parts = None
    if parts is None:
        raise CacheError("The team cache URL cannot be read: expected postgresql://user@host/database.")
    return parts


class _OwnPoolNoise(logging.Filter):
    """Drops the pool's messages about this package's own connections failing: their outage is said once,
    by the team store; other pools' messages pass."""

    def __init__(self) -> None:
        super().__init__()
        self.servers: set[tuple[str, str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        message = str(record.msg)
        # psycopg-pool 3.2 formats the pool's name into the message itself, 3.3 passes it as an argument.
        if message.startswith("error connecting in") and (
            (args and str(args[0]).startswith(POOL_NAME)) or message.startswith(f"error connecting in {POOL_NAME!r}")
        ):
            return False
        if message.startswith(("discarding closed connection", "discarding broken connection")) and args:
            try:
                info = getattr(args[0], "info")  # noqa: B009  # a Connection, typed as object here
                server = (str(info.host), str(info.port), str(info.dbname))
            except Exception:  # a connection too broken to say where it was: not one to be sure of
                return True
            return server not in self.servers
        return True


_noise = _OwnPoolNoise()


def quiet_pool_logs(parts: dict[str, Any]) -> None:
    logger = logging.getLogger("psycopg.pool")
    if _noise not in logger.filters:
        logger.addFilter(_noise)
    _noise.servers.add((str(parts.get("host") or ""), str(parts.get("port") or ""), str(parts.get("dbname") or "")))


def where(parts: dict[str, Any]) -> str:
    """A connection's address without its password: postgresql://user@host:port/database."""
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"
