"""A request's size as the SDK will send it, and the bound that spares writing it out twice."""

from hypothesis import given
from hypothesis import strategies as st

from claude_force_nb._request import MAX_MESSAGES_BYTES, Request, body_bytes, within

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=6), st.dictionaries(st.text(max_size=10), json_values)
)
def test_the_bound_is_never_below_the_size(body, extra):
    kwargs = {**body, "extra_body": extra}
    assert not within(kwargs, body_bytes(kwargs) - 1)


def test_an_ordinary_request_is_within_without_being_written_out():
    kwargs = Request.for_task(
        "Explain closures.", model="claude-sonnet-4-6", max_tokens=100, temperature=0.2
    ).to_kwargs()
    assert within(kwargs, MAX_MESSAGES_BYTES)
    assert body_bytes(kwargs) == len(
        b'{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Explain closures."}],'
        b'"max_tokens":100,"temperature":0.2}'
    )
