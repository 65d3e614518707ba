"""The Message Batches API as the runner needs it: its protocol, a batch's status, a request as a batch carries it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .._errors import CallError
from .._request import Completion, Request

# The Message Batches API's limits per batch.
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A Message Batch's state: ``processing_status`` is in_progress, canceling or ended."""

    id: str
    processing_status: str
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0
    created_at: str = ""
    ended_at: str | None = None
    archived_at: str | None = None  # once set, the results can no longer be fetched
    synthetic: bool = False  # a local Messages API server, not Claude, will answer it

    @classmethod
    def of(cls, batch: Mapping[str, Any], *, synthetic: bool = False) -> BatchStatus:
        """From the API's ``message_batch`` JSON."""
        counts = batch.get("request_counts") or {}
        return cls(
            str(batch["id"]),
            str(batch.get("processing_status", "")),
            **{name: int(counts.get(name) or 0) for name in COUNTS},
            created_at=str(batch.get("created_at") or ""),
            ended_at=batch.get("ended_at"),
            archived_at=batch.get("archived_at"),
            synthetic=synthetic,
        )

    @property
    def created(self) -> float | None:
        """``created_at`` as a Unix time; None when missing or unreadable."""
        try:
            return datetime.fromisoformat(self.created_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired

    def describe(self) -> str:
        counts = ", ".join(f"{getattr(self, name):,} {name}" for name in COUNTS if getattr(self, name))
        return f"{self.id}: {self.processing_status.replace('_', ' ')} ({counts or 'no requests'})"


def batch_params(request: Request) -> dict[str, Any]:
    """The ``params`` of a batch request: the request's body, with what the SDK sends as extra_body merged in."""
    kwargs = request.to_kwargs()
    extra = kwargs.pop("extra_body", None) or {}
    return {**kwargs, **extra}


class Batches(Protocol):
    """The Message Batches API: submit, look at, cancel, list, and read the results of batches."""

    @property
    def origin(self) -> str:
        """The endpoint, as the cache and the journal file its answers and batches."""

    async def create_batch(self, requests: list[tuple[str, Request]]) -> BatchStatus:
        """Submit ``(custom_id, request)`` pairs as one Message Batch."""

    async def retrieve_batch(self, batch_id: str) -> BatchStatus:
        """A Message Batch's state now."""

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        """Ask the API to cancel a Message Batch; requests already answered stay answered."""

    async def recent_batches(self, limit: int = 20) -> list[BatchStatus]:
        """The newest Message Batches of the organisation (or workspace), newest first."""

    def batch_results(self, batch: BatchStatus) -> AsyncIterator[tuple[str, Completion | CallError]]:
        """An ended batch's results: each custom_id with its answer, or the error that ended it."""
