"""Collecting ended Message Batches: their answers kept through the pipeline, their jobs closed once safe.

Used by a sweep's :class:`~.runner.BatchSender` while it waits, and by
:func:`collect_open` (``%agent batches``) for batches an earlier run left open.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

from .._call import PreparedCall
from .._errors import CallError, ClaudeForceWarning
from .._request import Completion, Request
from .journal import CANCELED, COLLECTED, LOST, BatchJournal, Job, JobRequest
from .remote import Batches, BatchStatus

T = TypeVar("T")
# The pipeline's validate-and-store step (see _pipeline.Keep).
Keep = Callable[[PreparedCall, Completion], Completion]
# custom_id prefix of a request without a cache key (cache off): its answer is not stored.
UNKEYED = "nc-"
# Each custom_id's outcome: its kept answer, or why it has none.
Outcomes = dict[str, "Completion | Exception"]


class Collector:
    """Polls batches and collects the ended ones: every answer through ``keep``, then the job closed.

    ``flush`` waits until kept answers are in the cache file; ``on_status``
    is called whenever a batch's counts change.
    """

    def __init__(
        self,
        batches: Batches,
        journal: BatchJournal | None,
        keep: Keep,
        *,
        flush: Callable[[], None] | None = None,
        on_status: Callable[[], object] | None = None,
    ):
        self.batches = batches
        self.journal = journal
        self.statuses: dict[str, BatchStatus] = {}
        self.on_status = on_status
        self._keep = keep
        self._flush = flush

    async def status(self, batch_id: str, job: Job | None) -> BatchStatus | None:
        """The batch's state now; None (its job marked lost) when the endpoint no longer knows it."""
        try:
            status = await self.batches.retrieve_batch(batch_id)
        except CallError as exc:
            if exc.status != 404:
                raise
            if job is not None:
                self.record(lambda j: j.finish(job.job, LOST), None)
            self.statuses.pop(batch_id, None)
            return None
        if self.statuses.get(batch_id) != status:
            self.statuses[batch_id] = status
            self.changed()
        return status

    async def collect(
        self, status: BatchStatus, job: Job | None, calls: Mapping[str, PreparedCall]
    ) -> tuple[Outcomes, bool]:
        """Keep an ended batch's answers: each custom_id's outcome, and whether any was for ``job`` or ``calls``.

        ``calls`` are this sweep's, by custom_id; answers to an earlier run's
        requests (written down in the job) are paid for too, and kept as well.
        The job is closed only once its answers are in the file: a kernel that
        stops sooner finds it open and collects it again.
        """
        none: list[JobRequest] = []
        entries = self.record(lambda j: j.entries(job.job), none) if job is not None else none
        known = {entry.custom_id: entry for entry in entries}
        outcomes: Outcomes = {}
        try:
            async for cid, outcome in self.batches.batch_results(status):
                call = calls.get(cid) or (self._orphan(cid, known[cid]) if cid in known else None)
                if isinstance(outcome, Completion) and call is not None:
                    try:
                        outcome = self._keep(call, outcome)
                    except Exception as exc:  # refused (a broken schema): billed, not kept
                        outcomes[cid] = exc
                        continue
                outcomes[cid] = outcome
        except CallError:
            if job is not None and status.archived:
                self.record(lambda j: j.finish(job.job, LOST), None)  # its results are gone: a re-run resubmits
            raise
        found = any(cid in calls or cid in known for cid in outcomes)
        if self._flush is not None:
            await asyncio.to_thread(self._flush)
        if job is not None:
            state = (CANCELED if status.canceled and not status.succeeded else COLLECTED) if found else LOST
            self.record(lambda j: j.finish(job.job, state), None)
        return outcomes, found

    def _orphan(self, cid: str, entry: JobRequest) -> PreparedCall | None:
        """An earlier run's request, as far as the journal knows it: enough to key and keep its answer."""
        if cid.startswith(UNKEYED):
            return None
        request = Request.for_task(entry.task, model=entry.model, max_tokens=1)
        return PreparedCall(
            agent=entry.agent,
            task=entry.task,
            request=request,
            key=cid,
            mode="normal",
            timeout=0.0,
            origin=self.batches.origin,
        )

    def changed(self) -> None:
        if self.on_status is not None:
            self.on_status()

    def record(self, action: Callable[[BatchJournal], T], otherwise: T) -> T:
        """``action`` on the journal, or ``otherwise`` with one warning when its database cannot take it."""
        if self.journal is None:
            return otherwise
        try:
            return action(self.journal)
        except self.journal.failures as exc:
            warnings.warn(
                f"Could not record the Message Batch in {self.journal.where} ({exc}); "
                "it will not be found again after a restart.",
                ClaudeForceWarning,
                stacklevel=2,
            )
            return otherwise


async def collect_open(
    batches: Batches, journal: BatchJournal, keep: Keep, *, flush: Callable[[], None] | None = None
) -> list[tuple[Job, BatchStatus | None]]:
    """Poll every open job of ``batches``' endpoint once; collect the ended ones into the cache."""
    collector = Collector(batches, journal, keep, flush=flush)
    found: list[tuple[Job, BatchStatus | None]] = []
    none: list[Job] = []
    for job in collector.record(lambda j: j.jobs(open_only=True), none):
        if job.origin != batches.origin or job.batch_id is None:
            continue
        status = await collector.status(job.batch_id, job)
        if status is not None and status.ended:
            try:
                await collector.collect(status, job, {})
            except CallError:
                pass  # listed with its state; collecting it again is for the next look
        found.append((job, status))
    return found
