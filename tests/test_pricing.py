import pytest

from claude_force_nb._models import KNOWN_MODELS
from claude_force_nb._pricing import DEFAULT_PRICES, Price, Usage, cost_of, estimate_cost, price_of


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


def test_cache_reads_writes_and_batches_bill_at_their_multipliers():
    sonnet = "claude-sonnet-4-6"  # $3 in, $15 out per million
    assert cost_of(sonnet, Usage(input=1_000_000)) == pytest.approx(3.0)
    assert cost_of(sonnet, Usage(cache_write_5m=1_000_000)) == pytest.approx(3.75)
    assert cost_of(sonnet, Usage(cache_write_1h=1_000_000)) == pytest.approx(6.0)
    assert cost_of(sonnet, Usage(cache_read=1_000_000)) == pytest.approx(0.3)
    assert cost_of(sonnet, Usage(input=1_000_000, output=1_000_000, batch=True)) == pytest.approx(9.0)
    own = {sonnet: Price(3.0, 15.0, cache_read=0.5, batch=0.4)}
    assert cost_of(sonnet, Usage(cache_read=1_000_000, batch=True), own) == pytest.approx(0.2)
    assert estimate_cost(sonnet, 1_000_000, 0) == pytest.approx(3.0)


def test_a_long_prompt_reprices_the_output_and_snapshots_too():
    long_prompt = Usage(input=150_000, output=1_000_000)
    assert cost_of("claude-haiku-5-5", long_prompt) == pytest.approx(0.075 + 2.5)
    assert cost_of("claude-haiku-5-5-20261001", long_prompt) == cost_of("claude-haiku-5-5", long_prompt)


def test_usage_reads_the_api_usage_object():
    usage = Usage.of(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "service_tier": "batch",
        }
    )
    assert usage == Usage(10, 5, cache_write_5m=100, cache_write_1h=200, batch=True)
    assert usage.prompt == 310
    assert Usage.of(None) == Usage() and Usage.of({"input_tokens": -3, "output_tokens": True}) == Usage()
