"""What a sweep would cost before it is sent: counted tokens, expected output, and the budget it must stay under."""

from __future__ import annotations

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._errors import BudgetExceededError


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


async def test_an_estimate_from_length_reads_the_text_not_an_images_base64(server, orchestrator, monkeypatch):
    monkeypatch.setattr("claude_force_nb._estimate.COUNT_SAMPLE", 1)
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 100_000}}
    calls = orchestrator.batch([("explainer", "item 0"), ("explainer", "item 1", {"attachments": [png]})]).calls
    estimate = await orchestrator.estimate(calls)
    assert estimate.counted == 1 and estimate.input_tokens < 2_000  # not 100,000 characters' worth
