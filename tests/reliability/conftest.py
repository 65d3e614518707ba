"""Fixtures for the reliability suite: each test's figures, printed together at the end of the run."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest

_FIGURES = pytest.StashKey[list[tuple[str, str]]]()


def _figures(request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    buffer = io.StringIO()

    def say(*values: object, sep: str = " ") -> None:
        print(*values, sep=sep, file=buffer)

    yield say
    request.config.stash.setdefault(_FIGURES, []).append((request.node.nodeid, buffer.getvalue()))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """``figures(...)`` prints as ``print`` does, into the run's "reliability figures" section.

    pytest captures a test's own output; this section shows in a plain
    ``pytest -q`` run, whether the test passed or failed.
    """
    yield from _figures(request)


@pytest.fixture(scope="module")
def module_figures(request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """As ``figures``, for a table that the tests of one module fill in together."""
    yield from _figures(request)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    reported = config.stash.get(_FIGURES, [])
    if not reported:
        return
    terminalreporter.section("reliability figures")
    for nodeid, text in reported:
        terminalreporter.write_line(nodeid)
        for line in text.splitlines():
            terminalreporter.write_line(f"    {line}")
