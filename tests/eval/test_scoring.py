"""Grades gathered into one round: every answer joins, and a round nobody waits for is not sent."""

import asyncio

import pytest

from claude_force_nb._eval.scoring import Round


async def test_the_round_goes_once_the_last_answer_joins_or_leaves():
    sent = []

    async def answer(calls):
        sent.append(list(calls))
        return [f"grade of {call}" for call in calls]

    together = Round(3, answer)
    first = asyncio.ensure_future(together.join("one"))
    second = asyncio.ensure_future(together.join(None))
    await asyncio.sleep(0)
    assert not sent and not first.done()
    together.leave()  # the third call ended without an answer
    assert await first == "grade of one" and await second is None
    assert sent == [["one"]]


async def test_when_every_waiter_is_cancelled_the_round_is_too():
    started, stopped = asyncio.Event(), asyncio.Event()

    async def answer(calls):
        started.set()
        try:
            await asyncio.Event().wait()  # a Message Batch that takes its time
        finally:
            stopped.set()

    together = Round(2, answer)
    waiters = [asyncio.ensure_future(together.join(name)) for name in ("one", "two")]
    await started.wait()
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    await asyncio.wait_for(stopped.wait(), 5)


async def test_a_failed_round_is_each_waiters_error():
    async def answer(calls):
        raise RuntimeError("the batch failed")

    with pytest.raises(RuntimeError, match="the batch failed"):
        await Round(1, answer).join("one")
