"""Where requests go: the public API, the bundled offline server, or another endpoint, in one normal form."""

from __future__ import annotations

from urllib.parse import urlsplit

PUBLIC_BASE_URL = "https://api.anthropic.com"
LOCAL_ORIGIN = "local"  # the bundled offline server, whatever port it got
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def endpoint(url: str) -> str:
    """``url`` normalised, as the cache files answers: scheme and host lower-case, no default port, no end slash."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{port}{parts.path.rstrip('/')}"
