"""Fuzz: objects whose repr, length and attributes do whatever hypothesis draws; the tools always answer, bounded,
without an address or a secret, and say what failed."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_force_nb._context import Workspace
from claude_force_nb._context.show import MAX_CHARS
from claude_force_nb._context.workspace import DESCRIBE, LIST

KEY = "sk-ant-api03-" + "Fz4_" * 20
ERRORS = st.sampled_from([ValueError, RuntimeError, KeyError, TypeError, RecursionError, MemoryError])
REPRS = st.one_of(
    st.text(max_size=200),
    st.builds(lambda n: "w" * n, st.integers(0, 200_000)),
    st.just(f"<Thing at 0x7f3a2c1d9e80 holding {KEY}>"),
    st.just(f"Config(key={KEY!r})"),
)


def hostile(repr_outcome, len_outcome, attribute):
    class Drawn:
        def __repr__(self):
            if isinstance(repr_outcome, type):
                raise repr_outcome("drawn")
            return repr_outcome

        def __len__(self):
            if isinstance(len_outcome, type):
                raise len_outcome("drawn")
            return len_outcome

        def __getattr__(self, name):
            return attribute

    return Drawn()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    repr_outcome=st.one_of(ERRORS, REPRS),
    len_outcome=st.one_of(ERRORS, st.integers(0, 10**9)),
    attribute=st.one_of(st.none(), st.integers(), st.text(max_size=20), st.just(lambda *a, **k: 1 / 0)),
)
def test_the_tools_answer_whatever_an_object_does(repr_outcome, len_outcome, attribute):
    workspace = Workspace({"thing": hostile(repr_outcome, len_outcome, attribute), "other": 1})
    for text in (workspace.read(LIST, {}), workspace.read(DESCRIBE, {"name": "thing"})):
        assert len(text) <= MAX_CHARS + 100
        assert not re.search(r" at 0x[0-9a-fA-F]+", text) and KEY not in text
    described = workspace.read(DESCRIBE, {"name": "thing"})
    if isinstance(repr_outcome, type):
        assert f"repr() raised {repr_outcome.__name__}" in described
    assert "other: int" in workspace.read(LIST, {})
