"""Call options: named from the magic line to the request, merged by one rule (what is set wins)."""

import pandas as pd
import pytest

from claude_force_nb import Call, CallOptions
from claude_force_nb._call import as_calls


def test_api_parameters_go_apart_and_none_is_unset():
    options = CallOptions.of(model="haiku", temperature=0.2, stop_sequences=["x"], system=None)
    assert (options.model, options.system) == ("haiku", None)
    assert options.params == {"temperature": 0.2, "stop_sequences": ["x"]}


def test_keywords_win_over_the_options_they_are_given_with_but_none_hides_nothing():
    base = CallOptions(model="opus", max_tokens=100, params={"temperature": 0.1})
    assert CallOptions.of(base, model="haiku").model == "haiku"
    assert CallOptions.of(base, model=None) is base
    assert CallOptions.of({"model": "opus", "item": 3}, model=None, item=None) == CallOptions(model="opus", item=3)
    merged = CallOptions.of(base, temperature=0.9, top_k=5)
    assert (merged.max_tokens, merged.params) == (100, {"temperature": 0.9, "top_k": 5})


def test_a_calls_own_model_and_item_win_over_its_options():
    assert Call("a", "t", options={"model": "haiku", "item": 3}).model == "haiku"
    assert Call("a", "t", options={"model": "haiku", "item": 3}).item == 3
    assert Call("a", "t", model="opus", options=CallOptions(model="haiku")).model == "opus"
    assert Call("a", "t", model="opus", options={"model": "haiku"}).model == "opus"
    (from_tuple,) = as_calls([("a", "t", {"model": "haiku", "max_tokens": 9})])
    assert (from_tuple.model, from_tuple.options.max_tokens) == ("haiku", 9)


def test_over_keeps_what_is_set_and_fills_in_the_rest():
    call = CallOptions(max_tokens=50, attachments=({"type": "image"},))
    shared = CallOptions(max_tokens=10, system="be brief", params={"temperature": 0.3})
    merged = call.over(shared)
    assert (merged.max_tokens, merged.system, merged.attachments) == (50, "be brief", ({"type": "image"},))
    assert merged.params == {"temperature": 0.3}
    assert call.over(CallOptions()) is call and CallOptions().over(shared) is shared


def test_a_pandas_row_as_the_item_is_never_compared_elementwise():
    row = pd.DataFrame({"a": [1, 2]}).iloc[0]
    call = Call("a", "t", item=row)
    assert CallOptions(max_tokens=5).over(call.options).item is row
    assert call.options.over(CallOptions(system="s")).item is row


def test_sequences_must_be_lists_not_strings():
    with pytest.raises(TypeError, match="tools must be a list"):
        CallOptions.of(tools="add")
