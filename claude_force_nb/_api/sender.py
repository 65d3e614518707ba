"""The direct sender: one request, a stream or a tool loop per call, within a concurrency limit."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from .._call import PreparedCall
from .._request import Completion
from .._sweep import Slot
from .backend import Messages

# The pipeline's validate-and-store step (see _pipeline.Keep).
Keep = Callable[[PreparedCall, Completion], Completion]


class DirectSender:
    """Sends each call on its own through ``messages``, at most ``max_concurrent`` at once per event loop.

    A sweep's slot carries its own limit, which replaces this one for its calls.
    """

    claims = True  # a live call answers within its deadline

    def __init__(self, messages: Messages, keep: Keep, *, max_concurrent: int):
        self.messages = messages
        self.max_concurrent = max_concurrent
        self._keep = keep
        # A semaphore belongs to the loop it first waits on; a background sweep has its own loop.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def admit(self, slot: Slot | None) -> asyncio.Semaphore:
        """The sweep's own limit, else this sender's for the running loop."""
        return slot.semaphore if slot is not None and slot.semaphore is not None else self._semaphore()

    async def send(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> Completion:
        completion = await self.messages.send(
            call.request, timeout=call.timeout, on_text=on_text, tools=call.tools, max_turns=call.max_turns
        )
        return self._keep(call, completion)

    async def send_admitted(self, call: PreparedCall) -> Completion:
        """Send ``call`` within this sender's own limit: for a call no sweep's slot holds."""
        async with self.admit(None):
            return await self.send(call)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrent)
        return semaphore
