"""Pacing calls to the organisation's rate limits, as the API reports them.

Every Messages API answer says, for requests, input tokens and output tokens,
the limit, what remains and when the bucket is full again. From those the
pacer learns each bucket's size and refill rate (no minute is assumed, so it
follows a server whose minute is scaled as well) and keeps a mirror of it: a
call waits until its request, its estimated input tokens and its max_tokens of
output fit, as the API admits it, and output tokens an answer did not use are
given back when it ends, as the API gives them back. A 429 holds every call
until its retry-after. Once engaged (an answer reported a limit, or a 429
came), the pacer runs as SDK middleware, once per HTTP attempt, so the SDK's
retries stay the only retry layer and are paced too. Before that, against an
endpoint that reports no limits (a local server, a proxy), it only admits each
call's first attempt and reads its answer (:meth:`Pacer.answered`): any
middleware sends every request down the SDK's slower path, which buys nothing
where there is nothing to pace to.

The buckets are aiolimiter's (see :mod:`._bucket`), imported with the first
answer that reports a limit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import email.utils
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._request import prompt_chars

if TYPE_CHECKING:
    from .bucket import Bucket

HEADER_PREFIX = "anthropic-ratelimit-"
KINDS = ("requests", "input-tokens", "output-tokens")
# Until answers say how many tokens a character makes, assume the usual four characters to a token.
DEFAULT_TOKENS_PER_CHAR = 0.25
_SMOOTHING = 0.3  # weight of the newest estimate of tokens per character
# A refill rate is spent / (time until the reset), counted from when the API wrote the answer, which is
# somewhere between sending the request and reading the answer. Counted from the send, and with the reset
# pushed out by its rounding (and "remaining" by its own), each answer gives a rate the true one is at
# least: the pacer follows the
# highest such bound since the limit last changed, so it never runs ahead of the API's bucket.
_PACE_WINDOW = 10.0  # seconds of sends the pace is measured over
# How long a session's first calls wait for the first answer to say what the limits are: long enough
# for a quick answer (or a stream's headers), short against a slow answer, which would hold a sweep.
PROBE_SECONDS = 1.0
# Until answers show how fast a bucket refills, it is taken to refill over an hour: calls use what it
# holds, and wait for a real rate before more.
_UNKNOWN_WINDOW = 3600.0
# What this process last heard from each endpoint, by kind: (limit, refill rate, spent, when on the timer).
# A later pacer for the endpoint (a new client, another loop) starts from it and skips the probe, so
# pacers of one endpoint share a timer.
_learned: dict[str, dict[str, tuple[int, float, float, float]]] = {}
# What the caller already took for the first attempt of the call in this context (see Pacer.admitted),
# which that attempt uses up: a mutable ticket, so the caller sees it did even from a copied context
# (wait_for's task).
_admitted: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("claude_force_nb_admitted", default=None)


@dataclass(frozen=True, slots=True)
class Limit:
    """One of the organisation's limits as last reported, and how close to it calls run."""

    kind: str  # "requests", "input-tokens" or "output-tokens"
    limit: int
    per_second: float  # refill rate; 0 until answers have shown it
    remaining: float

    @property
    def window(self) -> float:
        """Seconds to refill from empty: 60 for the API's per-minute limits (infinite while unknown)."""
        return self.limit / self.per_second if self.per_second > 0 else math.inf

    def describe(self) -> str:
        unit = self.kind.replace("-", " ")
        if self.per_second <= 0:
            return f"{self.limit:,} {unit} (refill rate not seen yet)"
        # The window is worked out from rounded figures: near a minute, it is the API's minute.
        window = "minute" if abs(self.window - 60) < 3 else f"{self.window:.2g} s"
        return f"{self.limit:,} {unit} per {window}"


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast calls go out and the limit they ride."""

    requests_per_second: float  # sent over the last few seconds
    limits: tuple[Limit, ...] = ()
    paused_for: float = 0.0  # seconds until a 429's retry-after ends
    rate_limited: int = 0  # 429s seen

    @property
    def riding(self) -> Limit | None:
        """The limit nearest to running out, the one setting the pace."""
        return min(self.limits, key=lambda limit: limit.remaining / limit.limit, default=None)

    def describe(self) -> str:
        if not self.limits:
            return f"{self.requests_per_second:.1f} requests/s; no rate limits reported"
        riding = self.riding
        assert riding is not None
        text = (
            f"{self.requests_per_second:.1f} requests/s, riding {riding.describe()} "
            f"({riding.remaining / riding.limit:.0%} left)"
        )
        if self.paused_for > 0:
            text += f"; paused {self.paused_for:.1f} s by a 429"
        if self.rate_limited:
            text += f"; {self.rate_limited} answered 429"
        return text


class _Ticket:
    """A call's first attempt, admitted: what it may spend, when, and whether an attempt has used it."""

    __slots__ = ("need", "sent", "used")

    def __init__(self, need: dict[str, float], sent: float) -> None:
        self.need, self.sent, self.used = need, sent, False


class Pacer:
    """Admits each Messages API attempt when the organisation's limits allow it (SDK middleware once engaged).

    One pacer belongs to one event loop (aiolimiter's buckets do); ``origin``
    names the endpoint it paces calls to. ``timer`` tells the time as the loop
    does (its buckets read it too), ``clock`` the wall time that answers' resets
    and Date headers are compared with.
    """

    def __init__(
        self,
        origin: str = "",
        *,
        timer: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.origin = origin
        self._timer = timer
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._rates: dict[str, float] = {}
        self._limits: dict[str, int] = {}  # the limit each rate was worked out for
        self._tokens_per_char = DEFAULT_TOKENS_PER_CHAR
        self._resume_at = 0.0  # on the timer
        self._sent: collections.deque[float] = collections.deque()
        self.rate_limited = 0
        self._in_flight = 0
        # How far the API's clock is ahead of ours, at least: the resets are on its clock, the sends on
        # ours. From each answer's Date header (whole seconds, written before we read it); none yet: 0.
        self._offset = -math.inf
        # Until the first answer from an endpoint says what the limits are (or PROBE_SECONDS pass), one
        # call goes alone: a sweep's opening burst would otherwise spend a small limit many times over
        # before anyone knew it. Once per endpoint and process.
        self._heard = asyncio.Event()
        self._probing = False
        known = _learned.get(origin)
        if known is not None:
            self._heard.set()
            for kind, (limit, rate, spent, when) in known.items():
                self._limits[kind], self._rates[kind] = limit, rate
                # Spent then, less what has refilled since.
                self._bucket(kind, limit, rate).hold(spent - rate * (self._timer() - when))

    @property
    def engaged(self) -> bool:
        """Whether calls go through this pacer as middleware: once a limit is known, or a 429 came."""
        return bool(self._buckets) or self.rate_limited > 0

    async def __call__(self, request: Any, call_next: Any) -> Any:
        # The tool runner's beta calls add "?beta=true": the path is what counts.
        path = str(request.url).partition("?")[0].rstrip("/")
        if request.method.lower() != "post" or not path.endswith("/v1/messages"):
            return await call_next(request)
        ticket = _admitted.get()
        if ticket is not None and not ticket.used and request.retries_taken == 0:
            ticket.used = True  # this attempt uses it; a retry waits its own turn
            need = ticket.need
        else:
            body = request.json if isinstance(request.json, Mapping) else {}
            need = self._need(body)
            await self._admit(need)
        sent = self._clock()
        self._in_flight += 1
        try:
            response = await call_next(request)
        except BaseException:
            # No answer: whether the API counted the attempt is unknown; its output was not spent.
            self._give_back({"output-tokens": need["output-tokens"]})
            raise
        finally:
            self._in_flight -= 1
            self._hear()
        self._observe(response.http_response.headers, response.status_code, need, sent)
        return response

    @contextlib.asynccontextmanager
    async def admitted(self, body: Mapping[str, Any]) -> AsyncIterator[None]:
        """Wait for the first attempt's turn before entering: a caller's deadline then counts only the call.

        An attempt that never reaches the API (the caller gave up first) gives its output tokens back.
        """
        need = self._need(body)
        await self._admit(need)
        ticket = _Ticket(need, self._clock())
        token = _admitted.set(ticket)
        counted = not self.engaged  # no middleware will count this call in flight
        self._in_flight += counted
        try:
            yield
        finally:
            self._in_flight -= counted
            if not ticket.used:
                self._give_back({"output-tokens": need["output-tokens"]})
                self._hear()
            _admitted.reset(token)

    def answered(self, headers: Mapping[str, str], status: int) -> None:
        """Read an answer the middleware did not see (the pacer was not engaged when the call went out)."""
        ticket = _admitted.get()
        if ticket is None or ticket.used:
            return
        ticket.used = True
        self._hear()
        self._observe(headers, status, ticket.need, ticket.sent)

    def finished(self, body: Mapping[str, Any], usage: Mapping[str, Any]) -> None:
        """An answer ended: give back its unused output tokens and learn how many tokens a character makes."""
        reserved = _int(body.get("max_tokens"))
        self._give_back({"output-tokens": reserved - _int(usage.get("output_tokens"))})
        chars = prompt_chars(body)
        counted = _int(usage.get("input_tokens")) + _int(usage.get("cache_creation_input_tokens"))
        if chars > 0 and counted > 0:
            self._tokens_per_char += _SMOOTHING * (counted / chars - self._tokens_per_char)

    def pace(self) -> Pace:
        """What the buckets hold now and how fast calls went out lately."""
        now = self._timer()
        while self._sent and self._sent[0] < now - _PACE_WINDOW:
            self._sent.popleft()
        span = min(_PACE_WINDOW, now - self._sent[0]) if self._sent else 0.0
        per_second = len(self._sent) / span if span > 0.5 else 0.0
        limits = tuple(
            Limit(kind, int(bucket.max_rate), self._rates.get(kind, 0.0), max(0.0, bucket.remaining))
            for kind, bucket in list(self._buckets.items())  # read from the panel's thread too
        )
        return Pace(per_second, limits, max(0.0, self._resume_at - now), self.rate_limited)

    def _need(self, body: Mapping[str, Any]) -> dict[str, float]:
        return {
            "requests": 1,
            "input-tokens": math.ceil(prompt_chars(body) * self._tokens_per_char),
            "output-tokens": _int(body.get("max_tokens")),
        }

    async def _admit(self, need: dict[str, float]) -> None:
        if not self._heard.is_set():
            if self._probing:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._heard.wait(), PROBE_SECONDS)
            else:
                self._probing = True
        # A loop, not one sleep: another 429 may push the resume time on meanwhile.
        while (wait := self._resume_at - self._timer()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        for kind, bucket in list(self._buckets.items()):
            # More than a whole bucket goes once the bucket is full, as the API lets it.
            await bucket.acquire(min(need[kind], bucket.max_rate))
        now = self._timer()
        self._sent.append(now)
        while self._sent[0] < now - _PACE_WINDOW:  # kept short without a panel reading the pace
            self._sent.popleft()

    def _hear(self) -> None:
        self._heard.set()
        _learned.setdefault(self.origin, {})

    def _bucket(self, kind: str, limit: int, rate: float) -> Bucket:
        bucket = self._buckets.get(kind)
        if bucket is None:
            from .bucket import Bucket  # aiolimiter's import costs more than the rest of a cached cell

            bucket = self._buckets[kind] = Bucket(limit, limit / rate, timer=self._timer)
        else:
            bucket.follow(limit, rate)
        return bucket

    def _give_back(self, amounts: Mapping[str, float]) -> None:
        for kind, amount in amounts.items():
            bucket = self._buckets.get(kind)
            if bucket is not None:
                bucket.give_back(amount)

    def _observe(self, headers: Mapping[str, str], status: int, need: dict[str, float], sent: float) -> None:
        self._hear()
        if status == 429:
            self.rate_limited += 1
            self._give_back(need)  # refused: the API spent nothing on it
            self._resume_at = max(self._resume_at, self._timer() + _retry_after(headers))
        elif status >= 400:
            self._give_back({"output-tokens": need["output-tokens"]})
        learned = _learned.setdefault(self.origin, {})
        written = _date(headers)
        if written is not None:
            self._offset = max(self._offset, written - self._clock())
        # The send on the API's clock, as early as it can have been: a rate worked out from it errs low.
        sent += self._offset if math.isfinite(self._offset) else 0.0
        for kind in KINDS:
            reported = _reported(headers, kind)
            if reported is None:
                if status < 400 and kind in self._buckets:  # an answer that reports no such limit: none any more
                    self._buckets.pop(kind).release()
                    learned.pop(kind, None)
                continue
            limit, remaining, reset, rounding = reported
            spent = limit - remaining
            span = reset + rounding - sent
            if spent > 1 and span > 0:  # a span of nothing: clocks too far apart to learn from this answer
                # "remaining" is rounded down, so up to one unit less than ``spent`` is owed.
                at_least = (spent - 1) / span
                if self._limits.get(kind) != limit or at_least > self._rates[kind]:
                    self._limits[kind], self._rates[kind] = limit, at_least
            known = self._limits.get(kind) == limit
            bucket = self._bucket(kind, limit, self._rates[kind] if known else limit / _UNKNOWN_WINDOW)
            # While the rate is unknown the bucket barely refills; an answer read with nothing else in
            # flight cannot be stale, so its figure stands even when it is lower.
            bucket.hold(spent, exactly=not known and not self._in_flight)
            if known:
                # The bucket's level, not this answer's figure: answers arrive out of order, and the
                # level holds the most any of them said was spent.
                learned[kind] = (limit, self._rates[kind], limit - bucket.remaining, self._timer())


def _reported(headers: Mapping[str, str], kind: str) -> tuple[int, int, float, float] | None:
    """(limit, remaining, reset as a Unix time, the reset's rounding) for ``kind``; None when not said."""
    try:
        limit = int(headers[f"{HEADER_PREFIX}{kind}-limit"])
        remaining = int(headers[f"{HEADER_PREFIX}{kind}-remaining"])
        stamp = headers[f"{HEADER_PREFIX}{kind}-reset"]
        reset = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return None
    # The API gives whole seconds; a server with a scaled minute, milliseconds.
    rounding = 0.001 if "." in stamp else 1.0
    return (limit, remaining, reset, rounding) if limit > 0 else None


def _date(headers: Mapping[str, str]) -> float | None:
    """The answer's Date header as a Unix time; None when missing or unreadable."""
    try:
        return email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds a 429 asks to wait: retry-after-ms, else retry-after; one second when it says neither."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, 60.0)
    return 1.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
