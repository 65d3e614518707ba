"""Single-flight: identical requests in flight at once make one call, whoever asked first."""

import asyncio
import threading

import pytest

from claude_force_nb._cache.flight import Flights


class Maker:
    """Makes an answer when its gate opens, counting how often it was asked to."""

    def __init__(self):
        self.gate = asyncio.Event()
        self.made = 0
        self.fail_with = None

    async def __call__(self):
        self.made += 1
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return f"answer {self.made}"


async def test_one_maker_and_every_other_caller_shares_its_answer():
    flights, make = Flights(), Maker()
    asks = [asyncio.create_task(flights.share("slot", make)) for _ in range(5)]
    await asyncio.sleep(0)
    make.gate.set()
    answers = await asyncio.gather(*asks)
    assert make.made == 1
    assert sorted(answers) == [("answer 1", False)] + [("answer 1", True)] * 4


async def test_other_slots_are_made_apart_and_a_finished_flight_is_not_shared_again():
    flights, make = Flights(), Maker()
    make.gate.set()
    assert await asyncio.gather(flights.share("a", make), flights.share("b", make)) == [
        ("answer 1", False),
        ("answer 2", False),
    ]
    assert await flights.share("a", make) == ("answer 3", False)


async def test_the_makers_exception_reaches_every_waiter():
    flights, make = Flights(), Maker()
    make.fail_with = error = RuntimeError("overloaded")
    asks = [asyncio.create_task(flights.share("slot", make)) for _ in range(3)]
    await asyncio.sleep(0)
    make.gate.set()
    assert await asyncio.gather(*asks, return_exceptions=True) == [error] * 3
    assert make.made == 1


async def test_waiters_make_it_themselves_when_the_maker_is_cancelled():
    flights, make = Flights(), Maker()
    maker = asyncio.create_task(flights.share("slot", make))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.share("slot", make))
    await asyncio.sleep(0)
    maker.cancel()
    await asyncio.sleep(0)
    make.gate.set()
    assert await waiter == ("answer 2", False)
    with pytest.raises(asyncio.CancelledError):
        await maker


async def test_a_cancelled_waiter_leaves_the_flight_going():
    flights, make = Flights(), Maker()
    maker = asyncio.create_task(flights.share("slot", make))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flights.share("slot", make))
    await asyncio.sleep(0)
    waiter.cancel()
    make.gate.set()
    assert await maker == ("answer 1", False)
    with pytest.raises(asyncio.CancelledError):
        await waiter


def test_each_event_loop_has_its_own_flights():
    flights = Flights()
    both_in_flight = threading.Barrier(2, timeout=30)  # a hang guard: broken if only one loop makes it
    answers = []

    async def make():
        both_in_flight.wait()  # blocks this thread's loop only
        return threading.get_ident()

    def ask():
        answers.append(asyncio.run(flights.share("slot", make)))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A future belongs to one loop: each loop made its own call, and neither shared the other's.
    assert len({ident for ident, _ in answers}) == 2 and [shared for _, shared in answers] == [False, False]
