"""Single-flight: identical requests in flight at once make one call, and the others wait for its answer."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Flights(Generic[T]):
    """Calls in flight by slot (a request's endpoint and key), one table per event loop.

    A future belongs to one loop, so identical requests are shared within a
    loop (a background sweep runs on its own).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future[T]]] = (
            weakref.WeakKeyDictionary()
        )

    async def share(self, slot: Hashable, make: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``make()``'s answer, and whether it was another caller's: ``make`` runs only when no one is making it.

        Its exception reaches every waiter. Waiters whose maker is cancelled
        make the call themselves, one of them for all.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            flights = self._by_loop.setdefault(loop, {})
        while True:
            flight = flights.get(slot)
            if flight is None:
                break
            try:
                return await asyncio.shield(flight), True
            except asyncio.CancelledError:
                if flight.cancelled():
                    continue  # the caller that was making it went away; make it ourselves
                raise
        flight = loop.create_future()
        flights[slot] = flight
        try:
            answer = await make()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # waiters re-raise it; no "never retrieved" log when there are none
            raise
        finally:
            if flights.get(slot) is flight:
                del flights[slot]
        flight.set_result(answer)
        return answer, False
