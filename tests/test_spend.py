"""Money while it is spent: a sweep's budget, and what the session's live answers cost."""

from __future__ import annotations

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._spend import Budget


def sweep(count, prefix="item"):
    return [("explainer", f"{prefix} {i}: name one prime") for i in range(count)]


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", max_tokens=200) as made:
        yield made


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
