import datetime
import typing
import warnings

import anthropic
import pytest

from claude_force_nb import DEFAULT_MODEL, ClaudeForceWarning
from claude_force_nb._errors import ModelNotFoundError
from claude_force_nb._models import ALIASES, KNOWN_MODELS, MODELS, lifecycle_note, record_of, resolve_model


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


def test_aliases_are_models_the_locked_sdk_names__else_refresh_the_lock():
    named = set(typing.get_args(typing.get_args(anthropic.types.Model)[0]))
    missing = sorted({*ALIASES.values(), DEFAULT_MODEL} - named)
    assert not missing, (
        f"anthropic {anthropic.__version__} no longer names {missing}: the lock needs refreshing, and the model "
        "table its aliases (see the README's 'Dependencies')."
    )


def test_aliases_and_the_default_point_at_active_models():
    today = datetime.date(2026, 12, 7)
    for model in (*ALIASES.values(), DEFAULT_MODEL):
        assert record_of(model).lifecycle(today) == "active", model


def test_every_record_is_consistent():
    ids = [model_id for record in MODELS for model_id in record.ids]
    assert len(ids) == len(set(ids)) == len(KNOWN_MODELS)
    for record in MODELS:
        assert record.id.startswith(f"claude-{record.family}-")
        assert record.min_cacheable_tokens in {512, 1024, 2048, 4096}
        assert record.replacement is None or record_of(record.replacement) is not None
        assert (record.replacement is not None) == (record.retires is not None), record.id
        assert all(record_of(snapshot) is record for snapshot in record.snapshots)


@pytest.mark.parametrize(
    ("model", "today", "note"),
    [
        ("claude-sonnet-4-6", datetime.date(2026, 12, 7), None),
        ("claude-imaginary-1", datetime.date(2026, 12, 7), None),
        (
            "claude-opus-4-5",
            datetime.date(2026, 12, 7),
            "Model claude-opus-4-5 is deprecated and reaches end of life on 2027-01-22; move to claude-opus-4-6.",
        ),
        (
            "claude-sonnet-4-5-20250929",
            datetime.date(2026, 11, 30),
            "Model claude-sonnet-4-5-20250929 was retired on 2026-11-30 and the API refuses it; "
            "move to claude-sonnet-4-6.",
        ),
    ],
)
def test_a_deprecated_or_retired_model_says_when_and_what_to_move_to(model, today, note):
    assert lifecycle_note(model, today) == note


def test_nothing_reaches_into_the_sdks_private_modules():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    private = re.compile(r"\banthropic\s*\.\s*_[a-z]|from\s+anthropic\s+import\s+\(?\s*_[a-z]")
    files = [p for folder in ("claude_force_nb", "tests", "bench", "notebooks") for p in (root / folder).rglob("*.py")]
    files += list((root / "notebooks").glob("*.ipynb"))
    found = [
        f"{path.relative_to(root)}:{match.group()}" for path in files for match in private.finditer(path.read_text())
    ]
    assert found == []
