import typing
import warnings

import anthropic
import anthropic._data
import pytest

from claude_force_nb import DEFAULT_MODEL, ClaudeForceWarning
from claude_force_nb._errors import ModelNotFoundError
from claude_force_nb._models import ALIASES, KNOWN_MODELS, resolve_model


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("opus", "claude-opus-4-6"),
        ("Sonnet", DEFAULT_MODEL),
        (" haiku ", "claude-haiku-4-5"),
        ("claude-opus-4.6", "claude-opus-4-6"),
        ("opus-4-6", "claude-opus-4-6"),
        ("sonnet 4.6", "claude-sonnet-4-6"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"),
        ("claude-sonnet-5-5", "claude-sonnet-5-5"),
    ],
)
def test_names_as_people_type_them_become_api_ids(typed, sent):
    assert resolve_model(typed) == sent


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [("gpt-4o", None), ("not-a-model", None), ("opsu", "opus"), ("haiku-4.5x", "claude-haiku-4-5")],
)
def test_an_unknown_name_names_the_closest_known_one(typed, suggestion):
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model(typed)
    assert caught.value.suggestion == suggestion
    assert str(caught.value).startswith(f"Unknown model {typed!r}.")


def test_a_new_claude_id_is_sent_as_typed_with_one_note():
    with pytest.warns(ClaudeForceWarning, match="'claude-sonnet-9' is not in claude-force-nb's table"):
        assert resolve_model("claude-sonnet-9") == "claude-sonnet-9"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_model("claude-sonnet-9") == "claude-sonnet-9"  # once only


def test_a_misspelt_claude_id_gets_a_hint():
    with pytest.warns(ClaudeForceWarning, match="did you mean 'claude-sonnet-4-6'"):
        resolve_model("claude-sonet-4-6")


def test_the_table_agrees_with_the_sdk():
    served = set(typing.get_args(typing.get_args(anthropic.types.Model)[0]))
    assert set(ALIASES.values()) <= served and DEFAULT_MODEL in served
    assert not set(ALIASES.values()) & set(anthropic._data.DEPRECATED_MODELS)
    assert set(KNOWN_MODELS) <= served
