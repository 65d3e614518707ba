"""A sweep's cache misses sent through the Message Batches API instead of one call each.

:class:`BatchRunner` is what a :class:`~._batch.Batch` runs each call with.
Hits are answered at once. The misses, one request per cache key (the key is
the ``custom_id``), are written down in the cache file's journal, submitted in
batches within the API's limits, polled, and collected when their batch ends:
every answer goes into the signed cache (so a re-run is a hit) before the
calls waiting for it get it. Requests that an earlier run (this kernel's or
another's) already submitted and that are still open are not submitted again:
their batch is polled and collected instead. Errored, expired and canceled
requests are failures; re-running the sweep submits them again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sqlite3
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .._call import PreparedCall
from .._errors import CallError, ClaudeForceWarning
from .._request import Completion, Request, body_bytes, too_large
from .._results import AgentResult, failure
from .._sweep import Slot
from .journal import (
    CANCELED,
    COLLECTED,
    LOST,
    OPEN,
    OWNER,
    SUBMITTED,
    SUBMITTING,
    BatchJournal,
    Entry,
    Job,
    owner_alive,
)
from .remote import COUNTS, MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, Batches, BatchStatus, batch_params

T = TypeVar("T")

DEFAULT_POLL_SECONDS = 10.0
# Polls start quick (a small batch can end within seconds) and slow down to this.
MAX_POLL_SECONDS = 60.0
# How far the API's clock may be behind ours when matching a submission the kernel did not see answered
# (kept small: a batch of the same size from a little earlier must not match), and how long to wait
# before looking for it a second time.
CLOCK_SKEW_SECONDS = 10.0
ADOPT_RETRY_SECONDS = 2.0
# The longest a submission can take (the SDK's default request timeout): past it, an unanswered
# submission is over, whoever made it; and how often a run waiting for another's submission looks.
SUBMIT_SECONDS = 600.0
SETTLE_POLL_SECONDS = 0.5
# Submissions this process has in flight, as (job number, journal path).
_SUBMITTING: set[tuple[int | None, str]] = set()
# Room left for the request's envelope and JSON escaping when sizing batches.
_ENVELOPE_BYTES = 200


class BatchRunner:
    """Runs one sweep's calls through the Message Batches API; call it as a Batch's runner.

    ``cached`` answers a call from the cache (counting the hit) or gives None;
    ``will_send`` says, counting nothing, whether a call needs the API;
    ``answered`` turns a call and its completion into a result; ``store``
    puts an answer in the cache under a custom_id (its key); ``fallback``
    answers a call that is not for the API; ``missed`` counts a call the
    cache did not answer; ``flush`` waits until stored answers are in the
    file; ``on_status`` is called whenever a batch's counts change.
    """

    def __init__(
        self,
        calls: Sequence[PreparedCall],
        backend: Batches,
        *,
        journal: BatchJournal | None,
        cached: Callable[[PreparedCall], AgentResult | None],
        will_send: Callable[[PreparedCall], bool],
        answered: Callable[[PreparedCall, Completion, bool], AgentResult],
        store: Callable[[str, Request, Completion, str], None],
        fallback: Callable[[PreparedCall], Awaitable[AgentResult]] | None = None,
        missed: Callable[[PreparedCall], None] | None = None,
        flush: Callable[[], None] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_status: Callable[[], object] | None = None,
    ):
        self.calls = list(calls)
        self.backend = backend
        self.journal = journal
        self.statuses: dict[str, BatchStatus] = {}
        self.poll_seconds = poll_seconds
        self.on_status = on_status
        self._cached = cached
        self._will_send = will_send
        self._answered = answered
        self._store = store
        self._fallback = fallback
        self._missed = missed
        self._flush = flush
        self._journal_path = str(journal.path) if journal is not None else ""
        self._submitted_here: set[str] = set()
        self._delivered: set[str] = set()
        self._answers: dict[str, asyncio.Future[Completion]] = {}
        self._requests: dict[str, PreparedCall] = {}
        self._waiting = 0
        self._work: asyncio.Task | None = None

    async def __call__(self, call: PreparedCall, slot: Slot) -> AgentResult:
        hit = self._cached(call)
        if hit is not None:
            return hit
        if self._work is None:
            self.plan()
            self._work = asyncio.get_running_loop().create_task(self._run())
        answer = self._answers.get(custom_id(call))
        if answer is None:  # not for the API (a replay miss, say): answered as a single call would be
            if self._fallback is None:
                return failure(call, CallError("This call is not part of the Message Batch."))
            return await self._fallback(call)
        if self._missed is not None:
            self._missed(call)
        slot.started()
        self._waiting += 1
        try:
            completion = await asyncio.shield(answer)
        except asyncio.CancelledError:
            # The last call to stop waiting stops the polling; the batch itself runs on at the
            # API and re-running the sweep (or %agent batches) collects it.
            self._waiting -= 1
            if self._waiting == 0 and not self._work.done():
                self._work.cancel()
            raise
        except Exception as exc:
            self._waiting -= 1
            return failure(call, exc)
        self._waiting -= 1
        # One request answered every call with its key: the first is billed, the rest share it.
        cid = custom_id(call)
        shared = cid in self._delivered
        self._delivered.add(cid)
        return self._answered(call, completion, shared)

    def plan(self) -> None:
        """Decide, counting nothing, which calls the batches must answer (one request per custom_id)."""
        loop = asyncio.get_running_loop()
        for call in self.calls:
            if self._will_send(call):
                cid = custom_id(call)
                if cid not in self._answers:
                    self._answers[cid] = loop.create_future()
                    self._requests[cid] = call

    def describe(self) -> str:
        """One line on the batches: how many requests each count holds."""
        if not self.statuses:
            return "Message Batches: submitting" if self._requests else "Message Batches: nothing to submit"
        statuses = list(self.statuses.values())  # a background sweep's thread may add to it meanwhile
        totals = {name: sum(getattr(s, name) for s in statuses) for name in COUNTS}
        counts = ", ".join(f"{value:,} {name}" for name, value in totals.items())
        ended = sum(s.ended for s in statuses)
        return f"Message Batches: {len(statuses)} ({ended} ended): {counts}"

    async def _run(self) -> None:
        try:
            await self._submit_and_collect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every waiting call fails with it; what was collected stays
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_exception(exc)
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(CallError("The Message Batches API returned no result for this request."))

    async def _submit_and_collect(self) -> None:
        origin = self.backend.origin
        nothing: dict[str, Job] = {}
        already = self._journal_call(lambda j: j.open_requests(origin), nothing)
        jobs: dict[str, Job | None] = {}  # batch id -> its job in the journal
        members: dict[str, list[str]] = {}  # batch id -> this sweep's custom_ids in it
        adopted: set[str] = set()
        pending: list[str] = []
        unanswered = {job.job: job for cid, job in already.items() if cid in self._requests and job.batch_id is None}
        for number, job in unanswered.items():
            settled = await self._settle_submission(job)
            if settled is not None and settled.batch_id is not None and settled.batch_id not in self._submitted_here:
                adopted.add(settled.batch_id)
            for cid, other in already.items():
                if other.job == number:
                    already[cid] = settled if settled is not None else dataclasses.replace(other, state=LOST)
        for cid in self._requests:
            open_job = already.get(cid)
            if open_job is not None and open_job.state in OPEN and open_job.batch_id is not None:
                jobs[open_job.batch_id] = open_job
                members.setdefault(open_job.batch_id, []).append(cid)
            else:
                pending.append(cid)
        while pending or jobs:
            chunks, oversize = _chunks(pending, self._requests)
            for cid, size in oversize.items():
                self._fail([cid], CallError(too_large(size, MAX_BATCH_BYTES, "Message Batches"), status=413))
            for chunk in chunks:
                batch_id, made = await self._submit(chunk)
                jobs[batch_id], members[batch_id] = made, chunk
            pending = []
            delay = min(1.0, self.poll_seconds)
            while jobs and not pending:
                for batch_id, polled in list(jobs.items()):
                    try:
                        status = await self._status(batch_id, polled)
                        if status is None:  # the endpoint no longer knows it (a local server restarted)
                            del jobs[batch_id]
                            pending += members.pop(batch_id, [])
                        elif status.ended:
                            del jobs[batch_id]
                            found = await self._collect(status, polled, members.get(batch_id, []))
                            if batch_id in adopted and not found:
                                # Not the batch the lost submission made after all: send those again.
                                pending += members.pop(batch_id, [])
                    except CallError as exc:  # this batch only: the others go on
                        jobs.pop(batch_id, None)
                        self._fail(members.pop(batch_id, []), exc)
                if jobs and not pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.poll_seconds, MAX_POLL_SECONDS)

    async def _settle_submission(self, job: Job) -> Job | None:
        """What became of a job written down but not yet given its batch id: None when nothing came of it.

        A submission still in progress (this process's, or a live one's that is
        not too old) is waited for; one a stopped process left behind is looked
        for among the endpoint's newest batches, and marked lost if not there.
        """
        while True:
            current: Job = self._journal_call(lambda j: j.job(job.job), None) or job
            if current.batch_id is not None or current.state != SUBMITTING:
                return current if current.batch_id is not None and current.state in OPEN else None
            age = time.time() - current.created
            if (current.job, self._journal_path) in _SUBMITTING or (
                owner_alive(current.owner) and current.owner != OWNER and age < SUBMIT_SECONDS
            ):
                await asyncio.sleep(SETTLE_POLL_SECONDS)
                continue
            found = await self._find_submitted(current)
            if found is None:
                self._finish(current.job, LOST)
                return None
            self._record_submitted(current.job, found)
            return Job(current.job, found, current.origin, current.created, current.size, SUBMITTED, current.owner)

    async def _find_submitted(self, job: Job) -> str | None:
        """The batch an unanswered submission created, if the API has one just like it; else None.

        Matched by size and by a creation time between the job's and the
        longest a submission can take, among the newest batches, and only if no
        other job of the journal has it. One more look a moment later, for a
        submission the API was still taking when its process stopped.
        """
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(ADOPT_RETRY_SECONDS)
            candidates = [
                status.id
                for status in await self.backend.recent_batches()
                if status.total == job.size
                and job.created - CLOCK_SKEW_SECONDS
                <= (status.created or 0)
                <= job.created + SUBMIT_SECONDS + CLOCK_SKEW_SECONDS
                and not self._known(status.id)
            ]
            if len(candidates) == 1:
                return candidates[0]
            if candidates:
                return None  # more than one: better to submit again than to collect the wrong one
        return None

    async def _submit(self, cids: list[str]) -> tuple[str, Job | None]:
        origin = self.backend.origin
        entries = [_entry(cid, self._requests[cid]) for cid in cids]
        number = self._journal_call(lambda j: j.begin(origin, entries), None)
        mark = (number, self._journal_path)
        _SUBMITTING.add(mark)
        try:
            status = await self.backend.create_batch([(cid, self._requests[cid].request) for cid in cids])
        except CallError as exc:
            if number is not None and exc.status is not None and 400 <= exc.status < 500 and exc.status != 408:
                self._finish(number, LOST)  # refused: no batch was made
            raise
        finally:
            _SUBMITTING.discard(mark)
        self._submitted_here.add(status.id)
        job = None
        if number is not None:
            self._record_submitted(number, status.id)
            job = Job(number, status.id, origin, time.time(), len(cids), SUBMITTED, OWNER)
        self.statuses[status.id] = status
        self._changed()
        return status.id, job

    async def _status(self, batch_id: str, job: Job | None) -> BatchStatus | None:
        try:
            status = await self.backend.retrieve_batch(batch_id)
        except CallError as exc:
            if exc.status != 404:
                raise
            if job is not None:
                self._finish(job.job, LOST)
            self.statuses.pop(batch_id, None)
            return None
        if self.statuses.get(batch_id) != status:
            self.statuses[batch_id] = status
            self._changed()
        return status

    async def _collect(self, status: BatchStatus, job: Job | None, mine: list[str]) -> bool:
        """Store an ended batch's answers and hand them to the calls waiting; whether any was for this job.

        The job is closed only once its answers are in the file: a kernel that
        stops sooner finds it open and collects it again.
        """
        none: list[Entry] = []
        entries = self._journal_call(lambda j: j.entries(job.job), none) if job is not None else none
        known = {entry.custom_id: entry for entry in entries}
        ours = set(mine) | set(known)
        outcomes: list[tuple[str, Completion | CallError]] = []
        try:
            async for cid, outcome in self.backend.batch_results(status):
                outcomes.append((cid, outcome))
                call = self._requests.get(cid)
                if isinstance(outcome, Completion):
                    # Answers of an earlier run's requests are paid for too: they go into the cache.
                    if call is not None:
                        self._store(cid, call.request, outcome, call.agent)
                    elif cid in known:
                        entry = known[cid]
                        request = Request.for_task(entry.task, model=entry.model, max_tokens=1)
                        self._store(cid, request, outcome, entry.agent)
        except CallError:
            if job is not None and status.archived:
                self._finish(job.job, LOST)  # its results are gone: a re-run submits its requests again
            raise
        found = any(cid in ours for cid, _ in outcomes)
        if self._flush is not None:
            await asyncio.to_thread(self._flush)
        if job is not None:
            if found:
                self._finish(job.job, CANCELED if status.canceled and not status.succeeded else COLLECTED)
            else:
                self._finish(job.job, LOST)
        for cid, outcome in outcomes:  # only now: the job is closed once its answers are safe
            answer = self._answers.get(cid)
            if answer is not None and not answer.done():
                if isinstance(outcome, Completion):
                    answer.set_result(outcome)
                else:
                    answer.set_exception(outcome)
        return found

    def _fail(self, cids: list[str], error: BaseException) -> None:
        for cid in cids:
            answer = self._answers.get(cid)
            if answer is not None and not answer.done():
                answer.set_exception(error)

    def _record_submitted(self, number: int, batch_id: str) -> None:
        self._journal_call(lambda j: j.submitted(number, batch_id), None)

    def _known(self, batch_id: str) -> bool:
        return self._journal_call(lambda j: j.find(batch_id), None) is not None

    def _finish(self, number: int, state: str) -> None:
        self._journal_call(lambda j: j.finish(number, state), None)

    def _changed(self) -> None:
        if self.on_status is not None:
            self.on_status()

    def _journal_call(self, action: Callable[[BatchJournal], T], otherwise: T) -> T:
        if self.journal is None:
            return otherwise
        try:
            return action(self.journal)
        except sqlite3.Error as exc:
            warnings.warn(
                f"Could not record the Message Batch in {self.journal.path} ({exc}); "
                "it will not be found again after a restart.",
                ClaudeForceWarning,
                stacklevel=2,
            )
            return otherwise


# custom_id prefix of a request without a cache key (cache off): its answer is not stored.
UNKEYED = "nc-"


async def collect_open(
    backend: Batches, journal: BatchJournal, store: Callable[[str, Request, Completion, str], None]
) -> list[tuple[Job, BatchStatus | None]]:
    """Poll every open job of ``backend``'s endpoint once; collect the ended ones into the cache."""
    runner = BatchRunner(
        [],
        backend,
        journal=journal,
        cached=_no_hit,
        will_send=_not_sent,
        answered=_unused,
        store=store,
    )
    found: list[tuple[Job, BatchStatus | None]] = []
    none: list[Job] = []
    for job in runner._journal_call(lambda j: j.jobs(open_only=True), none):
        if job.origin != backend.origin or job.batch_id is None:
            continue
        status = await runner._status(job.batch_id, job)
        if status is not None and status.ended:
            try:
                await runner._collect(status, job, [])
            except CallError:
                pass  # listed with its state; collecting it again is for the next look
        found.append((job, status))
    return found


def _no_hit(call: PreparedCall) -> AgentResult | None:
    return None


def _not_sent(call: PreparedCall) -> bool:
    return False


def _unused(call: PreparedCall, completion: Completion, shared: bool) -> AgentResult:
    raise AssertionError("collect_open answers no calls")


def custom_id(call: PreparedCall) -> str:
    """The request's cache key (64 hex digits, a valid custom_id); a hash of the request when it has none."""
    if call.key is not None:
        return call.key
    body = json.dumps(batch_params(call.request), sort_keys=True, default=str).encode()
    return UNKEYED + hashlib.blake2b(body, digest_size=24).hexdigest()


def _entry(cid: str, call: PreparedCall) -> Entry:
    return Entry(cid, call.agent, call.model, call.task)


def _chunks(cids: list[str], calls: dict[str, PreparedCall]) -> tuple[list[list[str]], dict[str, int]]:
    """``cids`` split so that each batch stays within the API's request count and size; and, with their
    sizes, those no batch can carry."""
    chunks: list[list[str]] = []
    oversize: dict[str, int] = {}
    current: list[str] = []
    size = 0
    for cid in cids:
        body = body_bytes(batch_params(calls[cid].request)) + _ENVELOPE_BYTES
        if body > MAX_BATCH_BYTES:
            oversize[cid] = body
            continue
        if current and (len(current) >= MAX_BATCH_REQUESTS or size + body > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(cid)
        size += body
    if current:
        chunks.append(current)
    return chunks, oversize
