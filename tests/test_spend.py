"""Money before and while it is spent: estimates from the token-counting endpoint, budgets, the session's spend."""

from __future__ import annotations

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._errors import BudgetExceededError
from claude_force_nb._pricing import Price, Usage, cost_of, estimate_cost
from claude_force_nb._spend import Budget


def sweep(count, prefix="item"):
    return [("explainer", f"{prefix} {i}: name one prime") for i in range(count)]


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


def counts(server):
    return [r for r in server.log if r.path == "/v1/messages/count_tokens"]


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", max_tokens=200) as made:
        yield made


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


async def test_a_dry_run_counts_tokens_and_sends_nothing(server, orchestrator):
    await orchestrator.execute_multiple(sweep(2))  # two answers cached, and seen for the output estimate
    server.reset()
    batch = orchestrator.batch(sweep(5) + sweep(1, prefix="item"))  # 6 calls: 2 cached, 1 duplicate
    estimate = await orchestrator.estimate(batch.calls)
    assert messages(server) == []
    assert len(counts(server)) == estimate.to_send == 3
    assert (estimate.calls, estimate.cached, estimate.counted, estimate.at_ceiling) == (6, 3, 3, 0)
    counted = sum(r.body["messages"][0]["content"] != "" for r in counts(server))
    assert counted == 3 and estimate.input_tokens > 0
    assert estimate.cost == pytest.approx(estimate.input_cost + estimate.output_cost)
    assert "to send: 3" in estimate.describe() and "estimated cost: $" in estimate.describe()


async def test_without_earlier_answers_output_is_estimated_at_max_tokens(server, orchestrator):
    estimate = await orchestrator.estimate(orchestrator.batch(sweep(4), max_tokens=100).calls)
    assert (estimate.output_tokens, estimate.at_ceiling) == (400, 4)
    assert "at max_tokens, a ceiling" in estimate.describe()
    halved = await orchestrator.estimate(orchestrator.batch(sweep(4), max_tokens=100).calls, batch=True)
    assert halved.cost == pytest.approx(estimate.cost / 2)


async def test_a_large_sweep_is_counted_from_a_sample(server, orchestrator, monkeypatch):
    monkeypatch.setattr("claude_force_nb._estimate.COUNT_SAMPLE", 5)
    estimate = await orchestrator.estimate(orchestrator.batch(sweep(40)).calls)
    assert len(counts(server)) == estimate.counted == 5
    assert estimate.to_send == 40 and estimate.input_tokens > 0
    assert "5 requests counted by the endpoint, the rest estimated from their length" in estimate.describe()


async def test_a_budget_below_the_estimate_refuses_to_start(server, orchestrator):
    with pytest.raises(BudgetExceededError, match=r"Not started: estimated \$0\.\d+ for 10 requests exceeds"):
        await orchestrator.execute_multiple(sweep(10), budget=0.001)
    assert messages(server) == []


async def test_a_budget_reached_while_running_stops_new_calls_and_keeps_the_answers(server, orchestrator):
    # Each answer costs about $0.0015 here; the estimate (at max_tokens) fits, the spend crosses after a few.
    batch = orchestrator.batch(sweep(30), budget=0.005, concurrency=1)
    results = await batch.wait()
    sent = [r for r in results if r.success]
    stopped = [r for r in results if r.status == "over budget"]
    assert 1 <= len(sent) < 30 and len(sent) + len(stopped) == 30
    assert len(messages(server)) == len(sent)
    assert batch.budget.spent == pytest.approx(sum(r.cost for r in sent))
    assert batch.budget.spent - sent[-1].cost < 0.005 <= batch.budget.spent
    assert "re-run with a larger --budget" in stopped[0].errors[0]
    assert batch.progress.cancelled == len(stopped)
    again = await orchestrator.execute_multiple(sweep(len(sent)))
    assert all(r.cached for r in again)  # what was paid for is in the cache


async def test_the_session_spend_counts_live_answers_only(server, orchestrator):
    await orchestrator.execute_multiple(sweep(3))
    await orchestrator.execute_multiple(sweep(3))  # hits: free
    spend = orchestrator.spent()
    assert spend.calls == 3 and spend.unpriced == 0
    refreshed = await orchestrator.execute_multiple(sweep(3), cache_mode="refresh")  # the same answers, paid again
    assert orchestrator.spent().calls == 6
    assert (
        orchestrator.spent().cost == pytest.approx(2 * spend.cost) == pytest.approx(2 * sum(r.cost for r in refreshed))
    )


def test_a_budget_must_be_money():
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="budget must be a positive, finite number of dollars"):
            Budget(bad)
    with pytest.raises(ValueError, match="budget must be a number, got 'ten'"):
        Budget("ten")


async def test_a_budget_needs_models_with_a_price(server, orchestrator):
    with pytest.warns(Warning, match="claude-future-9"), pytest.raises(ValueError, match="has no price"):
        orchestrator.batch(sweep(2), budget=1, model="claude-future-9")


async def test_an_estimate_from_length_reads_the_text_not_an_images_base64(server, orchestrator, monkeypatch):
    monkeypatch.setattr("claude_force_nb._estimate.COUNT_SAMPLE", 1)
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100_000}}
    calls = orchestrator.batch([("explainer", "item 0"), ("explainer", "item 1", {"attachments": [png]})]).calls
    estimate = await orchestrator.estimate(calls)
    assert estimate.counted == 1 and estimate.input_tokens < 2_000  # not 100,000 characters' worth
