import pytest

from claude_force_nb import Call
from claude_force_nb._call import as_calls


def test_calls_from_tuples_and_call_objects():
    calls = as_calls([("explainer", "a"), ("summarizer", "b", {"model": "claude-haiku-4-5", "item": 3, "top_k": 5})])
    assert calls[0] == Call("explainer", "a")
    assert calls[1] == Call("summarizer", "b", "claude-haiku-4-5", 3, {"top_k": 5})
    same = Call("explainer", "c")
    assert as_calls([same])[0] is same


@pytest.mark.parametrize("bad", [("explainer",), ("explainer", "a", "not options"), ("a", "b", {}, "d")])
def test_other_shapes_are_refused(bad):
    with pytest.raises(TypeError, match="Expected Call"):
        as_calls([bad])
