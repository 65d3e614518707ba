"""Batch: runs prepared calls through the runner it is given, with a slot per call."""

import asyncio

import pytest

from claude_force_nb import AgentResult, Batch
from claude_force_nb._call import PreparedCall
from claude_force_nb._request import Request


def prepared(task: str) -> PreparedCall:
    request = Request.for_task(task, model="claude-sonnet-4-6", max_tokens=10)
    return PreparedCall("explainer", task, request, key=None, mode="no-cache", timeout=5.0)


class Runner:
    """Answers each call after ``delay``; records the slot each call was given."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.slots = []
        self.running = 0
        self.most_running = 0

    async def __call__(self, call, slot):
        self.slots.append(slot)
        async with slot.semaphore or asyncio.Semaphore(100):
            slot.started()
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.running -= 1
        return AgentResult(call.agent, True, output=call.task.upper(), task=call.task)


async def test_results_come_back_in_input_order_through_the_runner():
    runner = Runner()
    batch = Batch([prepared(f"task {i}") for i in range(5)], runner)
    results = await batch
    assert [r.output for r in results] == [f"TASK {i}" for i in range(5)]
    assert len(runner.slots) == 5 and batch.progress.succeeded == 5


async def test_each_call_gets_the_batch_concurrency_as_its_slot():
    runner = Runner(delay=0.01)
    batch = Batch([prepared(f"task {i}") for i in range(6)], runner, concurrency=2)
    await batch
    assert runner.most_running == 2
    assert len({id(slot.semaphore) for slot in runner.slots}) == 1


@pytest.mark.parametrize("concurrency", [0, 2.5, float("nan")])
def test_a_bad_concurrency_is_refused_when_the_batch_is_made(concurrency):
    with pytest.raises(ValueError, match="concurrency must be"):
        Batch([prepared("task")], Runner(), concurrency=concurrency)


async def test_a_cancel_before_the_batch_starts_is_not_lost():
    # A background run's handle may cancel before the worker loop has started the batch.
    batch = Batch([prepared(f"task {i}") for i in range(4)], Runner())
    batch.cancel()
    results = await batch.settle()
    assert [r.status for r in results] == ["cancelled"] * 4
    assert batch.progress.cancelled == 4


async def test_a_runner_that_raises_fails_only_its_call():
    async def runner(call, slot):
        if call.task == "task 1":
            raise RuntimeError("boom")
        return AgentResult(call.agent, True, output="fine", task=call.task)

    results = await Batch([prepared(f"task {i}") for i in range(3)], runner)
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert str(results[1].error) == "boom"


def test_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Batch([prepared("x")], Runner(), concurrency=0)
