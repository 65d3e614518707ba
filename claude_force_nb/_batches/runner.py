"""A sweep's cache misses sent through the Message Batches API instead of one call each.

:class:`BatchSender` is the pipeline's second sender. The cache answered the
hits already; the misses, one request per cache key (the key is the
``custom_id``), are written down in the journal (the cache file's, or the team database's), submitted in
batches within the API's limits, polled, and collected when their batch ends:
every answer goes through the pipeline's ``keep`` (validated, then into the
signed cache, so a re-run is a hit) before the calls waiting for it get it.
Requests that an earlier run (this kernel's or another's) already submitted
and that are still open are not submitted again: their batch is polled and
collected instead. Errored, expired and canceled
requests are failures; re-running the sweep submits them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence

from .._call import PreparedCall
from .._errors import CallError
from .._request import Completion, body_bytes, too_large
from .._sweep import Slot
from .collector import UNKEYED, Collector, Keep
from .journal import LOST, OPEN, OWNER, SUBMITTED, SUBMITTING, BatchJournal, Job, JobRequest, owner_alive
from .remote import COUNTS, MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, Batches, BatchStatus, batch_params

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
# Submissions this process has in flight, as (job number, journal's place).
_SUBMITTING: set[tuple[int | None, str]] = set()
# Room left for the request's envelope and JSON escaping when sizing batches.
_ENVELOPE_BYTES = 200


class BatchSender:
    """Sends one sweep's calls through the Message Batches API: the pipeline's sender for ``--batch``.

    ``will_send`` says, counting nothing, whether a call needs the API (the
    whole sweep is planned at its first send, so that one submission carries
    every miss); ``keep`` is the pipeline's validate-and-store step; ``flush``
    waits until kept answers are in the file; ``fallback`` sends a call the
    plan did not include (one whose cached answer expired meanwhile);
    ``on_status`` is called whenever a batch's counts change.
    """

    claims = False  # a Message Batch may take a day: nobody waits for it

    def __init__(
        self,
        calls: Sequence[PreparedCall],
        batches: Batches,
        *,
        journal: BatchJournal | None,
        keep: Keep,
        will_send: Callable[[PreparedCall], bool],
        fallback: Callable[[PreparedCall], Awaitable[Completion]] | None = None,
        flush: Callable[[], None] | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        if any(call.tools for call in calls):
            raise ValueError(
                "Tools (--tools, --context) run in a loop of replies, which a Message Batch cannot hold: "
                "drop --batch, or the tools."
            )
        self.calls = list(calls)
        self.batches = batches
        self.journal = journal
        self.poll_seconds = poll_seconds
        self.collector = Collector(batches, journal, keep, flush=flush)
        self._will_send = will_send
        self._fallback = fallback
        self._clock = clock
        self._journal_where = journal.where if journal is not None else ""
        self._submitted_here: set[str] = set()
        self._ids: dict[int, str] = {}  # custom_id by call (by identity: identical no-cache calls go apart)
        self._answers: dict[str, asyncio.Future[Completion]] = {}
        self._requests: dict[str, PreparedCall] = {}
        self._waiting = 0
        self._work: asyncio.Task | None = None

    @property
    def statuses(self) -> dict[str, BatchStatus]:
        """The batches this sweep waits for, by id, as last polled."""
        return self.collector.statuses

    @property
    def on_status(self) -> Callable[[], object] | None:
        return self.collector.on_status

    @on_status.setter
    def on_status(self, callback: Callable[[], object] | None) -> None:
        self.collector.on_status = callback

    def admit(self, slot: Slot | None) -> contextlib.nullcontext[None]:
        """Nothing to hold: a waiting call sends nothing itself."""
        return contextlib.nullcontext()

    async def send(self, call: PreparedCall, *, on_text: Callable[[str], object] | None = None) -> Completion:
        """The call's answer, once the batch that carries its request ends (kept by then)."""
        if self._work is None:
            self.plan()
            self._work = asyncio.get_running_loop().create_task(self._run())
        answer = self._answers.get(self._ids.get(id(call), ""))
        if answer is None:  # planned as a hit, but no longer one: sent on its own
            if self._fallback is None:
                raise CallError("This call is not part of the Message Batch; re-run the sweep to send it.")
            return await self._fallback(call)
        self._waiting += 1
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            # The last call to stop waiting stops the polling; the batch itself runs on at the
            # API and re-running the sweep (or %agent batches) collects it.
            if self._waiting == 1 and not self._work.done():
                self._work.cancel()
            raise
        finally:
            self._waiting -= 1

    def plan(self) -> None:
        """Decide, counting nothing, which calls the batches must answer (one request per custom_id)."""
        loop = asyncio.get_running_loop()
        for index, call in enumerate(self.calls):
            if self._will_send(call):
                cid = custom_id(call, index)
                self._ids[id(call)] = cid
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
        origin = self.batches.origin
        nothing: dict[str, Job] = {}
        already = self.collector.record(lambda j: j.open_requests(origin), nothing)
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
            current: Job = self.collector.record(lambda j: j.job(job.job), None) or job
            if current.batch_id is not None or current.state != SUBMITTING:
                return current if current.batch_id is not None and current.state in OPEN else None
            age = self._clock() - current.created
            if (current.job, self._journal_where) in _SUBMITTING or (
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
                for status in await self.batches.recent_batches()
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
        origin = self.batches.origin
        entries = [_entry(cid, self._requests[cid]) for cid in cids]
        number = self.collector.record(lambda j: j.begin(origin, entries), None)
        mark = (number, self._journal_where)
        _SUBMITTING.add(mark)
        try:
            status = await self.batches.create_batch([(cid, self._requests[cid].request) for cid in cids])
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
            job = Job(number, status.id, origin, self._clock(), len(cids), SUBMITTED, OWNER)
        self.collector.statuses[status.id] = status
        self._changed()
        return status.id, job

    async def _status(self, batch_id: str, job: Job | None) -> BatchStatus | None:
        return await self.collector.status(batch_id, job)

    async def _collect(self, status: BatchStatus, job: Job | None, mine: list[str]) -> bool:
        """Keep an ended batch's answers and hand them to the calls waiting; whether any was for this job."""
        outcomes, found = await self.collector.collect(status, job, {cid: self._requests[cid] for cid in mine})
        for cid, outcome in outcomes.items():  # only now: the job is closed once its answers are safe
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
        self.collector.record(lambda j: j.submitted(number, batch_id), None)

    def _known(self, batch_id: str) -> bool:
        return self.collector.record(lambda j: j.find(batch_id), None) is not None

    def _finish(self, number: int, state: str) -> None:
        self.collector.record(lambda j: j.finish(number, state), None)

    def _changed(self) -> None:
        self.collector.changed()


def custom_id(call: PreparedCall, index: int) -> str:
    """The request's cache key (64 hex digits, a valid custom_id); without one, a hash of the request and
    its place in the sweep (``index``), so that identical calls outside the cache stay independent."""
    if call.key is not None:
        return call.key
    body = json.dumps(batch_params(call.request), sort_keys=True, default=str).encode() + b"#%d" % index
    return UNKEYED + hashlib.blake2b(body, digest_size=24).hexdigest()


def _entry(cid: str, call: PreparedCall) -> JobRequest:
    return JobRequest(cid, call.agent, call.model, call.task)


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
