"""A request's bounds: the API's size limit, checked before sending, and its deadline, retries included."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

from .._errors import CallError, CallTimeoutError
from .._request import MAX_MESSAGES_BYTES, body_bytes, too_large, within

T = TypeVar("T")


def within_size(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs``, if the body they make is within the API's size limit; else a CallError, before sending.

    Over the limit the API answers 413, often before reading the body: the
    client then sees a reset connection, retries it as a network error and
    uploads the whole body each time.
    """
    if within(kwargs, MAX_MESSAGES_BYTES):  # nearly always: then the body is never written out twice
        return kwargs
    size = body_bytes(kwargs)
    if size > MAX_MESSAGES_BYTES:
        raise CallError(too_large(size, MAX_MESSAGES_BYTES, "Messages API"), status=413)
    return kwargs


async def within_deadline(work: Awaitable[T], seconds: float | None) -> T:
    """``await work``, raising :class:`CallTimeoutError` after ``seconds`` (retries included)."""
    if seconds is None:
        return await work
    try:
        if sys.version_info >= (3, 11):
            # asyncio.timeout avoids wait_for's extra task per call.
            async with asyncio.timeout(seconds):
                return await work
        return await asyncio.wait_for(work, seconds)
    except CallError:
        raise
    except asyncio.TimeoutError as exc:
        raise CallTimeoutError(f"No answer within {seconds:g} s; raise the timeout or try again later.") from exc
