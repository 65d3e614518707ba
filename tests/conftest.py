"""Shared fixtures: a running local Messages API server, an SDK client on it, an isolated environment."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path

import anthropic
import pytest
from IPython.core.interactiveshell import InteractiveShell
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from claude_force_nb.simulator import LocalServer

_CLEARED_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CACHE_SECRET",
    "CLAUDE_CACHE_OLD_SECRETS",
    "CLAUDE_FORCE_NB_MODEL",
    "CLAUDE_FORCE_NB_CACHE_MODE",
    "CLAUDE_FORCE_NB_CACHE_URL",
)

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"


def pytest_report_header() -> str:
    """Whether this run uses the locked versions: a failure on newer releases then says where to look."""
    drifted = []
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        locked = Requirement(line)
        if locked.marker is not None and not locked.marker.evaluate():
            continue
        try:
            installed = metadata.version(locked.name)
        except metadata.PackageNotFoundError:
            continue  # an extra this run did not install
        if not locked.specifier.contains(installed, prereleases=True):
            drifted.append(f"{canonicalize_name(locked.name)} {installed} (locked {str(locked.specifier)[2:]})")
    if not drifted:
        return "locked versions: the installed packages are the ones in constraints.txt"
    return (
        f"not the locked versions: {', '.join(drifted)}; if the suite passes, refresh constraints.txt "
        "(README, Dependencies)"
    )


@pytest.fixture(scope="session")
def _session_server():
    # One server for the whole run; starting a thread per test would only add noise.
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the run; the tests that use it skip where its binaries are missing
    (and fail, with CLAUDE_FORCE_NB_REQUIRE_POSTGRES=1, as in CI)."""
    from postgres import Cluster, binaries

    found = binaries()
    if found is None:
        why = "no PostgreSQL server binaries (initdb, pg_ctl: /usr/lib/postgresql/*/bin, Debian's postgresql)"
        if os.environ.get("CLAUDE_FORCE_NB_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CLAUDE_FORCE_NB_REQUIRE_POSTGRES=1, but {why}")
        pytest.skip(why)
    cluster = Cluster(found)
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def team_url(postgres) -> str:
    """The URL of a new, empty database in the test cluster (with its password)."""
    return postgres.database()


@pytest.fixture
def server(_session_server: LocalServer) -> LocalServer:
    """The shared local server, with an empty log, no faults, no latency, no rate limits and any key accepted."""
    _session_server.reset()
    _session_server.latency = 0.0
    _session_server.api_key = None
    _session_server.rate_limits = None
    return _session_server


@pytest.fixture
def ip(server: LocalServer, monkeypatch: pytest.MonkeyPatch):
    """An InteractiveShell with the extension loaded, talking to the local server."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "claude_force_nb")
    yield shell
    shell.run_line_magic("unload_ext", "claude_force_nb")
    shell.config.pop("AgentMagics", None)
    for name in list(shell.user_ns):
        if not name.startswith("_") and name not in shell.user_ns_hidden:
            del shell.user_ns[name]


@pytest.fixture
async def client(server: LocalServer):
    """An ``AsyncAnthropic`` on the local server that validates every response strictly."""
    async with anthropic.AsyncAnthropic(
        api_key="test-key", base_url=server.url, max_retries=2, _strict_response_validation=True
    ) as sdk:
        yield sdk


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """No real keys or user settings leak in; home and working directories are per test."""
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    dirs = {name: tmp_path / name for name in ("nb-home", "user-home", "work")}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("CLAUDE_FORCE_NB_HOME", str(dirs["nb-home"]))
    monkeypatch.setenv("HOME", str(dirs["user-home"]))
    # A proxy configured on the machine must not intercept loopback calls.
    for name in ("NO_PROXY", "no_proxy"):
        existing = os.environ.get(name, "")
        monkeypatch.setenv(name, ",".join(filter(None, (existing, "127.0.0.1,localhost"))))
    monkeypatch.chdir(dirs["work"])
    return dirs


async def _until(condition: Callable[[], bool], *, timeout: float = 60.0, interval: float = 0.02) -> None:
    # Polls because what it watches (the local server's log and counters) is written by other threads.
    for _ in range(int(timeout / interval)):
        if condition():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"still not true after {timeout:g} s (a hang guard, not a speed check)")


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    """``await until(lambda: server.in_flight == 4)``: wait for something another thread does."""
    return _until


@pytest.fixture
def send_oversize() -> Callable[[int, str, int], tuple[str, str]]:
    """Send a body of ``size`` blank bytes to ``path`` on a local server; return its reply and Connection header."""

    def send(port: int, path: str, size: int) -> tuple[str, str]:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: local\r\nx-api-key: k\r\n"
            f"content-type: application/json\r\ncontent-length: {size}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head.encode())
            chunk = b" " * (1 << 20)
            for start in range(0, size, len(chunk)):
                sock.sendall(chunk[: size - start])
            reply = sock.makefile("rb")
            status = reply.readline().decode()
            headers = {}
            while (line := reply.readline().decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
            body = reply.read(int(headers["content-length"])).decode()
        return status + body, headers.get("connection", "")

    return send


class FakeClock:
    """Stands in for time.monotonic and time.time; moves only when told to."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A clock for injectable timers, so tests tick instead of sleeping."""
    return FakeClock()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often agents are looked up, requests built and fingerprinted, and the cache read, from now on."""
    from claude_force_nb._agents import AgentRegistry
    from claude_force_nb._cache import response
    from claude_force_nb._prepare import Preparer

    counts = {"agent": 0, "request": 0, "fingerprint": 0, "lookup": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(AgentRegistry, "get", counting("agent", AgentRegistry.get))
    monkeypatch.setattr(Preparer, "request", counting("request", Preparer.request))
    monkeypatch.setattr(response, "fingerprint", counting("fingerprint", response.fingerprint))
    real_lookup = response.ResponseCache.lookup

    def lookup(self, *args, **kwargs):
        if not kwargs.get("peek"):  # a peek (is it there?) reads nothing a call would be served
            counts["lookup"] += 1
        return real_lookup(self, *args, **kwargs)

    monkeypatch.setattr(response.ResponseCache, "lookup", lookup)
    return counts


@pytest.fixture
def kernel_env(server, monkeypatch):
    """The environment a kernel a test starts inherits: it talks to the test's server."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    return server
