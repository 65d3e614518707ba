import hashlib
import os
import subprocess
import sys

import pytest

from claude_force_nb._cache import fingerprint as _fingerprint
from claude_force_nb._cache.fingerprint import KEY_VERSION, fingerprint
from claude_force_nb._request import Request

MODEL = "claude-sonnet-4-6"


def request(task="Explain closures.", **params):
    params.setdefault("model", MODEL)
    params.setdefault("max_tokens", 256)
    return Request.for_task(task, **params)


def test_key_is_64_hex_digits_and_repeatable():
    key = fingerprint(request())
    assert len(key) == 64 and int(key, 16) >= 0
    assert fingerprint(request()) == key


def test_known_answer_pins_the_encoding():
    # Written out by hand: if the encoding changes, KEY_VERSION must change
    # with it, or stored rows would answer under a different meaning.
    req = Request(MODEL, [{"role": "user", "content": "hi"}], 16, "sys", {"stop_sequences": ["x"]}, {"top_k": 5})
    stream = (
        b"claude-force-nb/key/2\x00"
        b"s17:claude-sonnet-4-6"
        b"i16;"
        b"s3:sys"
        b"l1:"
        b"d2:"
        b"s7:content"
        b"s2:hi"
        b"s4:role"
        b"s4:user"
        b"d1:"
        b"s14:stop_sequences"
        b"l1:"
        b"s1:x"
        b"d1:"
        b"s5:top_k"
        b"i5;"
    )
    assert KEY_VERSION == 2
    assert fingerprint(req) == hashlib.blake2b(stream, digest_size=32).hexdigest()


def test_same_key_in_another_process_and_hash_seed():
    req = request("déjà vu " * 50, temperature=0.5, tools=[{"name": "t", "input_schema": {"type": "object"}}])
    script = (
        "from claude_force_nb._request import Request\n"
        "from claude_force_nb._cache.fingerprint import fingerprint\n"
        f"print(fingerprint(Request.for_task({req.task!r}, model={MODEL!r}, max_tokens=256, temperature=0.5,"
        " tools=[{'name': 't', 'input_schema': {'type': 'object'}}])))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == fingerprint(req)


def test_dict_order_does_not_matter():
    tool_a = {"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"q": {}}}}
    tool_b = {"input_schema": {"properties": {"q": {}}, "type": "object"}, "description": "d", "name": "lookup"}
    a = Request(
        MODEL,
        [{"role": "user", "content": "x"}],
        10,
        None,
        {"tools": [tool_a], "tool_choice": {"type": "auto"}},
        {"temperature": 0.3, "top_p": 0.9},
    )
    b = Request(
        MODEL,
        [{"content": "x", "role": "user"}],
        10,
        None,
        {"tool_choice": {"type": "auto"}, "tools": [tool_b]},
        {"top_p": 0.9, "temperature": 0.3},
    )
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(("left", "right"), [(0, 0.0), (1, 1.0), (-0.0, 0), (1024, 1024.0)])
def test_integral_floats_equal_integers(left, right):
    assert fingerprint(request(temperature=left)) == fingerprint(request(temperature=right))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (True, 1),
        (False, 0),
        (0.5, "0.5"),
        (1, "1"),
        (None, "None"),
        (["ab"], ["a", "b"]),
        ({"a": "b"}, ["a", "b"]),
        ([], {}),
        ("", None),
        ([[1], 2], [1, [2]]),
        (0.1, 0.1000000001),
    ],
)
def test_different_values_never_collide(left, right):
    assert fingerprint(request(top_k=left)) != fingerprint(request(top_k=right))


def test_list_and_tuple_are_the_same_json():
    assert fingerprint(request(stop_sequences=["a", "b"])) == fingerprint(request(stop_sequences=("a", "b")))


BASE = {
    "model": MODEL,
    "max_tokens": 256,
    "system": "Be brief.",
    "stop_sequences": ["END"],
    "tools": [{"name": "search", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "low"},
    "temperature": 0.2,
    "top_p": 0.9,
    "top_k": 40,
}
CHANGES = {
    "model": "claude-haiku-4-5",
    "max_tokens": 257,
    "system": "Be thorough.",
    "stop_sequences": ["STOP"],
    "tools": [{"name": "search", "input_schema": {"type": "object", "required": ["q"]}}],
    "tool_choice": {"type": "any"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "output_config": {"effort": "high"},
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 41,
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_every_field_that_shapes_the_answer_changes_the_key(field):
    base = Request.for_task("Explain closures.", **BASE)
    changed = Request.for_task("Explain closures.", **{**BASE, field: CHANGES[field]})
    assert fingerprint(base) != fingerprint(changed)


def test_dropping_a_field_changes_the_key():
    base = Request.for_task("t", **BASE)
    for field in ("stop_sequences", "tools", "thinking", "temperature", "system"):
        without = {k: v for k, v in BASE.items() if k != field}
        assert fingerprint(Request.for_task("t", **without)) != fingerprint(base), field


def test_messages_content_role_and_turns_change_the_key():
    one = [{"role": "user", "content": "hi"}]
    keys = {
        fingerprint(Request(MODEL, one, 10)),
        fingerprint(Request(MODEL, [{"role": "user", "content": "hi!"}], 10)),
        fingerprint(Request(MODEL, [{"role": "assistant", "content": "hi"}], 10)),
        fingerprint(Request(MODEL, [*one, {"role": "assistant", "content": "hello"}], 10)),
        fingerprint(Request(MODEL, [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], 10)),
    }
    assert len(keys) == 5


def test_long_and_short_strings_are_both_covered():
    long = "x" * 10_000
    assert fingerprint(request(long)) != fingerprint(request(long[:-1] + "y"))
    assert fingerprint(request("a" * 64)) != fingerprint(request("a" * 65))


def test_empty_system_prompt_is_no_system_prompt():
    with_empty = Request(MODEL, [{"role": "user", "content": "x"}], 10, "")
    with_none = Request(MODEL, [{"role": "user", "content": "x"}], 10, None)
    assert fingerprint(with_empty) == fingerprint(with_none)


def test_billing_and_routing_params_are_ignored():
    plain = request()
    assert fingerprint(request(metadata={"user_id": "u1"})) == fingerprint(plain)
    assert fingerprint(request(service_tier="standard_only")) == fingerprint(plain)


def test_key_version_is_part_of_the_key(monkeypatch):
    before = fingerprint(request())
    monkeypatch.setattr(_fingerprint, "_HEADER", b"claude-force-nb/key/%d\x00" % (KEY_VERSION + 1))
    assert fingerprint(request()) != before


def test_mixed_key_types_are_ordered_deterministically():
    a = request(top_k={1: "a", "1": "b"})
    b = request(top_k={"1": "b", 1: "a"})
    assert fingerprint(a) == fingerprint(b)


def test_sdk_models_key_like_their_json():
    class Tool:
        def model_dump(self, **kwargs):
            return {"name": "t", "input_schema": {"type": "object"}}

    assert fingerprint(request(tools=[Tool()])) == fingerprint(request(tools=[Tool().model_dump()]))


def test_unsupported_values_say_so():
    with pytest.raises(TypeError, match="object value"):
        fingerprint(request(top_k=object()))


def test_prompt_cache_marks_change_billing_not_the_key():
    plain = Request(
        MODEL,
        [{"role": "user", "content": [{"type": "text", "text": "long document"}, {"type": "text", "text": "q"}]}],
        16,
        "sys",
        {"tools": [{"name": "t", "input_schema": {"type": "object"}}]},
    )
    marked = Request(
        MODEL,
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "long document", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                    {"type": "text", "text": "q"},
                ],
            }
        ],
        16,
        "sys",
        {"tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]},
        cache_system=True,
    )
    assert fingerprint(marked) == fingerprint(plain)
    assert marked.to_kwargs()["system"] == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    assert plain.to_kwargs()["system"] == "sys"


def test_data_named_cache_control_still_tells_requests_apart():
    def tool(prop):
        schema = {"type": "object", "properties": {prop: {"type": "string"}}}
        return Request(
            MODEL, [{"role": "user", "content": "hi"}], 16, None, {"tools": [{"name": "t", "input_schema": schema}]}
        )

    def turn(blocks):
        return Request(MODEL, [{"role": "user", "content": "q"}, {"role": "assistant", "content": blocks}], 16)

    assert fingerprint(tool("cache_control")) != fingerprint(tool("other"))
    answered = [{"type": "tool_use", "id": "a", "name": "t", "input": {"cache_control": "off"}}]
    plain = [{"type": "tool_use", "id": "a", "name": "t", "input": {}}]
    assert fingerprint(turn(answered)) != fingerprint(turn(plain))
    marked = Request(
        MODEL, [{"role": "user", "content": "hi"}], 16, extra_body={"cache_control": {"type": "ephemeral"}}
    )
    assert fingerprint(marked) == fingerprint(Request(MODEL, [{"role": "user", "content": "hi"}], 16))
