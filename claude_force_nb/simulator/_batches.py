"""Message batches in server memory: their requests, how far each has got, and their results.

A batch takes ``seconds`` (the server's ``batch_seconds`` when it was created)
from creation to end; its requests finish one after another, evenly over that
time, so ``request_counts`` move between polls. Nothing runs in the
background: every read works out from the server clock where a batch has got.
Answers are generated once, when the results are first read, and go through
the prompt cache in request order.

Cancelling puts a batch in "canceling" for a tenth of its processing time (or
until its natural end, if sooner); requests that finish meanwhile still count,
as requests in flight may on the API. The rest are canceled. A batch not ended
``expiry`` seconds after creation ends with the rest expired.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _answers, _validation, _wire
from ._answers import Shape
from ._caching import PromptCache
from ._limits import rfc3339
from ._outcomes import BatchOutcomes, Outcome
from ._tools import DEFAULT_TOOL_TURNS

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
CANCEL_FRACTION = 0.1
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_COUNTED = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass(slots=True)
class Batch:
    """One batch: its requests with their settled outcomes, and the times that decide its progress."""

    id: str
    created: float  # on the server clock
    wall: float  # the wall clock at creation, which timestamps are counted from
    seconds: float
    expiry: float
    custom_ids: list[str]
    params: list[dict[str, Any]]
    fates: list[Outcome | None]  # None: succeeds
    shapes: list[Shape | None]  # how each answer ends, if a test shaped it
    cancel_at: float | None = None
    results: bytes | None = None  # the JSONL, made on the first read after the end
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def end(self) -> tuple[float, str | None]:
        """When processing ends, and what the requests unfinished then become (None: all finished)."""
        end, rest = self.created + self.seconds, None
        if self.cancel_at is not None and self.cancel_at + self.seconds * CANCEL_FRACTION < end:
            end, rest = self.cancel_at + self.seconds * CANCEL_FRACTION, "canceled"
        if self.created + self.expiry < end:
            end, rest = self.created + self.expiry, "expired"
        return end, rest

    def finished(self, now: float) -> int:
        """How many requests have finished by ``now``, cancel and expiry aside."""
        total = len(self.custom_ids)
        # Compared first, as (created + seconds) - created need not equal seconds in floating point.
        if now >= self.created + self.seconds:
            return total
        return max(0, min(total, math.floor(total * (now - self.created) / self.seconds)))

    def status(self, now: float) -> str:
        if now >= self.end()[0]:
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"

    def counts(self, now: float) -> dict[str, int]:
        end, rest = self.end()
        done = self.finished(min(now, end))
        counts = dict.fromkeys(_COUNTED, 0)
        for fate in self.fates[:done]:
            counts["succeeded" if fate is None else "errored" if fate.errored else "expired"] += 1
        left = len(self.custom_ids) - done
        counts[rest if now >= end and rest is not None else "processing"] += left
        return counts

    def to_json(self, now: float, base_url: str) -> dict[str, Any]:
        """The ``MessageBatch`` object as it stands at ``now``."""
        end, _ = self.end()
        ended = now >= end
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status(now),
            "request_counts": self.counts(now),
            "created_at": self._stamp(self.created),
            "expires_at": self._stamp(self.created + self.expiry),
            "ended_at": self._stamp(end) if ended else None,
            "cancel_initiated_at": self._stamp(self.cancel_at) if self.cancel_at is not None else None,
            # Results stay available; the API archives them after 29 days, which a local session never reaches.
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }

    def jsonl(self, cache: PromptCache, tool_turns: int = DEFAULT_TOOL_TURNS) -> bytes:
        """The results, one ``MessageBatchIndividualResponse`` a line; call only once the batch has ended."""
        with self.lock:
            if self.results is None:
                end, rest = self.end()
                done = self.finished(end)
                lines = []
                for i, custom_id in enumerate(self.custom_ids):
                    fate, shape = self.fates[i], self.shapes[i]
                    result = self._result(i < done, self.params[i], fate, shape, rest, cache, tool_turns)
                    lines.append(_wire.dumps({"custom_id": custom_id, "result": result}))
                self.results = b"\n".join(lines) + b"\n"
            return self.results

    @staticmethod
    def _result(
        finished: bool,
        params: dict[str, Any],
        fate: Outcome | None,
        shape: Shape | None,
        rest: str | None,
        cache: PromptCache,
        tool_turns: int,
    ) -> dict[str, Any]:
        if not finished:
            return {"type": rest}
        if fate is None:
            # What /v1/messages answers for the same params, on the batch tier.
            answer = _answers.make_answer(params, shape, cached=cache.use(params), tool_turns=tool_turns)
            message_id = "msg_" + secrets.token_hex(12)
            message = _wire.message_json(answer, message_id=message_id, model=params["model"], service_tier="batch")
            return {"type": "succeeded", "message": message}
        if fate.errored:
            return {"type": "errored", "error": _wire.error_json(fate.kind, fate.message, None)}
        return {"type": "expired"}

    def _stamp(self, moment: float) -> str:
        return rfc3339(self.wall + (moment - self.created))


def parse(body: Any) -> list[tuple[str, dict[str, Any]]]:
    """The (custom_id, params) of a create body; :class:`_validation.InvalidRequest` where the API returns 400.

    Params are not checked here: the API checks them while processing, and a bad one errors on its own.
    """
    if not isinstance(body, dict):
        raise _validation.InvalidRequest("Request body must be a JSON object.")
    requests = body.get("requests")
    if not isinstance(requests, list):
        raise _validation.InvalidRequest("requests: Field required (a list of requests).")
    if not 1 <= len(requests) <= MAX_REQUESTS:
        bound = "at least 1 item" if not requests else f"at most {MAX_REQUESTS} items"
        raise _validation.InvalidRequest(f"requests: List should have {bound} after validation, not {len(requests)}.")
    parsed: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, request in enumerate(requests):
        if not isinstance(request, dict):
            raise _validation.InvalidRequest(f"requests.{i}: Input should be an object with custom_id and params.")
        custom_id, params = request.get("custom_id"), request.get("params")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
            raise _validation.InvalidRequest(
                f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
            )
        if custom_id in seen:
            raise _validation.InvalidRequest(
                f"requests.{i}.custom_id: Duplicate custom_id {custom_id!r}; each request in a batch needs its own."
            )
        seen.add(custom_id)
        if not isinstance(params, dict):
            raise _validation.InvalidRequest(f"requests.{i}.params: Field required (the Messages API parameters).")
        if params.get("stream", False) is not False:
            raise _validation.InvalidRequest(f"requests.{i}.params.stream: Streaming is not supported in batches.")
        parsed.append((custom_id, params))
    return parsed


def settle(requests: Sequence[tuple[str, dict[str, Any]]], outcomes: BatchOutcomes) -> list[Outcome | None]:
    """Each request's outcome: its params' own error if they are invalid, else what ``outcomes`` forces."""
    fates: list[Outcome | None] = []
    for custom_id, params in requests:
        try:
            _validation.validate(params)
        except _validation.UnknownModel as exc:
            fates.append(Outcome("not_found_error", str(exc)))
        except _validation.InvalidRequest as exc:
            fates.append(Outcome("invalid_request_error", str(exc)))
        else:
            fates.append(outcomes.draw(custom_id))
    return fates


class Batches:
    """Every batch of this server, newest last; thread-safe."""

    def __init__(self, timer: Callable[[], float], clock: Callable[[], float] = time.time):
        self._timer = timer
        self._clock = clock
        self._batches: dict[str, Batch] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._timer()

    def create(
        self,
        requests: Sequence[tuple[str, dict[str, Any]]],
        fates: list[Outcome | None],
        seconds: float,
        expiry: float,
        shapes: Sequence[Shape | None] = (),
    ) -> Batch:
        custom_ids = [custom_id for custom_id, _ in requests]
        params = [params for _, params in requests]
        shaped = [*shapes, *[None] * (len(requests) - len(shapes))]
        batch_id = "msgbatch_" + secrets.token_hex(12)
        batch = Batch(batch_id, self._timer(), self._clock(), seconds, expiry, custom_ids, params, fates, shaped)
        with self._lock:
            self._batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self._batches.get(batch_id)

    def page(self, *, after_id: str | None, before_id: str | None, limit: int) -> tuple[list[Batch], bool]:
        """Newest first: ``limit`` batches older than ``after_id`` or newer than ``before_id``; and whether more remain.

        KeyError names a cursor that is not a batch.
        """
        with self._lock:
            newest_first = list(reversed(self._batches.values()))
        position = {batch.id: i for i, batch in enumerate(newest_first)}
        for cursor in (before_id, after_id):
            if cursor is not None and cursor not in position:
                raise KeyError(cursor)
        if before_id is not None:
            start = max(0, position[before_id] - limit)
            return newest_first[start : position[before_id]], start > 0
        start = position[after_id] + 1 if after_id is not None else 0
        return newest_first[start : start + limit], start + limit < len(newest_first)

    def cancel(self, batch: Batch) -> None:
        """Start cancelling, unless already started."""
        with self._lock:
            if batch.cancel_at is None:
                batch.cancel_at = self._timer()

    def delete(self, batch_id: str) -> None:
        with self._lock:
            self._batches.pop(batch_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._batches)

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()
