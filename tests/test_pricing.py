import pytest

from claude_force_nb._models import KNOWN_MODELS
from claude_force_nb._pricing import DEFAULT_PRICES, estimate_cost, price_of


def test_a_known_model_and_its_dated_snapshot_cost_the_same():
    assert price_of("claude-haiku-4-5-20251001") == price_of("claude-haiku-4-5") == (1.0, 5.0)
    assert estimate_cost("claude-sonnet-4-6", 1_000_000, 1_000_000) == pytest.approx(18.0)


@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-new-9", "claude-opus-4-6-preview"])
def test_a_model_without_a_price_costs_unknown_not_a_guess(model):
    assert price_of(model) is None
    assert estimate_cost(model, 100, 100) is None


def test_a_long_prompt_moves_to_the_second_price():
    assert estimate_cost("claude-haiku-5-5", 100_000, 0) == pytest.approx(0.01)
    assert estimate_cost("claude-haiku-5-5", 100_001, 1_000_000) == pytest.approx(0.0500005 + 2.5)


def test_an_overridden_price_wins():
    assert estimate_cost("claude-haiku-5-5", 200_000, 0, {"claude-haiku-5-5": (1.0, 1.0)}) == pytest.approx(0.2)


def test_every_priced_model_is_one_the_api_serves():
    assert set(DEFAULT_PRICES) <= set(KNOWN_MODELS)
