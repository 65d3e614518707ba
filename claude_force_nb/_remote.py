"""A Message Batch as the API describes it, and a request as a batch carries it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._request import Request

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
