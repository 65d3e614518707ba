"""The one pipeline: its rules hold for every sender, and a new sender plugs in without a path of its own."""

import asyncio
import contextlib

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._request import Completion


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k") as made:
        yield made


def messages(server):
    return [r for r in server.log if r.path == "/v1/messages"]


class EchoSender:
    """A sender of its own: answers with the task, as a sender must, through the pipeline's keep step."""

    def __init__(self, keep):
        self.keep = keep
        self.sent = []

    def admit(self, slot):
        return contextlib.nullcontext()

    async def send(self, call, *, on_text=None):
        self.sent.append(call.task)
        await asyncio.sleep(0)  # in flight for a moment, as a request is
        message = {"model": call.model, "content": [{"type": "text", "text": call.task}], "usage": {}}
        return self.keep(call, Completion(message, 0.01, "req_echo", call.origin))


async def test_a_sender_of_its_own_gets_lookup_single_flight_storing_and_counting(orchestrator):
    pipeline = orchestrator.pipeline
    sender = EchoSender(pipeline.keep)
    call = orchestrator.prepare("explainer", "echo me")
    first, shared = await asyncio.gather(*(pipeline.answer(call, sender=sender) for _ in range(2)))
    again = await pipeline.answer(call, sender=sender)
    assert sender.sent == ["echo me"]  # one send: the other shared it, the third was a hit
    assert (first.source, shared.source, again.source) == ("api", "shared", "memory")
    assert first.output == shared.output == again.output == "echo me"
    stats = orchestrator.stats()
    assert (stats.misses, stats.shared, stats.hits, stats.calls) == (2, 1, 1, 1)
    assert orchestrator.spent().calls == 1


async def test_identical_calls_in_one_sweep_are_sent_once_and_billed_once(server, orchestrator):
    results = await orchestrator.execute_multiple([("explainer", "the same question")] * 3)
    assert len(messages(server)) == 1
    assert sorted(r.source for r in results) == ["api", "shared", "shared"]
    costs = sorted(r.cost for r in results)
    assert costs[:2] == [0.0, 0.0] and costs[2] > 0 and orchestrator.spent().cost == costs[2]


async def test_a_call_outside_the_cache_is_neither_looked_up_nor_shared_nor_kept(server, orchestrator):
    results = await orchestrator.execute_multiple([("explainer", "fresh")] * 2, cache_mode="no-cache")
    assert len(messages(server)) == 2 and [r.source for r in results] == ["api", "api"]
    assert orchestrator.stats().misses == 0
    assert orchestrator.lookup(orchestrator.prepare("explainer", "fresh")) is None


async def test_a_replay_that_misses_fails_and_sends_nothing(server, orchestrator):
    result = await orchestrator.execute_agent("explainer", "never recorded", cache_mode="replay")
    assert not result.success and type(result.error).__name__ == "CacheMissError"
    assert messages(server) == []
