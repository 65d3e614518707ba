"""A cached answer as callers see it (Row) and as the file holds it (Record), and the bytes a signature covers.

A row is filed under its request's key *and* the endpoint (origin) that
answered it, so an answer from one endpoint is never served for another; it
says whether a local Messages API server produced it (synthetic) and which
secret signed it (key_id), so a row signed elsewhere is recognised as
foreign rather than forged.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import NamedTuple

from .._request import Completion

TASK_SUMMARY_CHARS = 80

# In the order of Record's fields, so a fetched tuple maps onto a Record as it is.
COLUMNS = (
    "key, origin, synthetic, agent, model, task, response, request_id, input_tokens, output_tokens, latency, "
    "created, expires, key_id, signature"
)

_PAYLOAD_HEADER = b"claude-force-nb/row/2\x00"
_NUMBERS = struct.Struct(">qqdddq")


def summary(task: str) -> str:
    """A task as the file keeps it: one line, at most TASK_SUMMARY_CHARS characters."""
    return " ".join(task[: 2 * TASK_SUMMARY_CHARS].split())[:TASK_SUMMARY_CHARS]


@dataclass(frozen=True, slots=True)
class Row:
    """One cached answer with the summary stored beside it; where it came from is on its completion."""

    key: str
    completion: Completion
    created: float
    expires: float
    agent: str = ""
    model: str = ""
    task: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class Record(NamedTuple):
    """A row as the file holds it: every column, the signature last."""

    key: str
    origin: str
    synthetic: int
    agent: str
    model: str
    task: str
    response: str  # the Messages API JSON
    request_id: str | None
    input_tokens: int
    output_tokens: int
    latency: float
    created: float
    expires: float
    key_id: str
    signature: bytes = b""

    @classmethod
    def of(cls, row: Row, key_id: str) -> Record:
        """The record for ``row``, unsigned; the task is kept as a short one-line summary."""
        c = row.completion
        try:
            response = json.dumps(c.message, separators=(",", ":"), ensure_ascii=False)
            response.encode()
        except UnicodeEncodeError:
            # Lone surrogates cannot be stored as UTF-8 text; escaped, they can.
            response = json.dumps(c.message, separators=(",", ":"))
        return cls(
            row.key,
            c.origin,
            int(c.synthetic),
            row.agent,
            row.model,
            summary(row.task).encode("utf-8", "replace").decode(),
            response,
            c.request_id,
            c.input_tokens,
            c.output_tokens,
            float(c.latency),
            float(row.created),
            float(row.expires),
            key_id,
        )

    def row(self) -> Row:
        """The row this record holds."""
        message = json.loads(self.response)
        completion = Completion(message, self.latency, self.request_id, self.origin, bool(self.synthetic))
        return Row(
            self.key,
            completion,
            self.created,
            self.expires,
            self.agent,
            self.model,
            self.task,
            self.input_tokens,
            self.output_tokens,
        )


def payload(record: Record) -> bytes:
    """The canonical bytes a row's signature covers: every column but the signature."""
    numbers = (record.input_tokens, record.output_tokens, record.latency, record.created, record.expires)
    parts = [_PAYLOAD_HEADER, _NUMBERS.pack(*numbers, record.synthetic)]
    for text in (record.key, record.origin, record.agent, record.model, record.task, record.response, record.key_id):
        data = text.encode()
        parts.append(b"%d:" % len(data))
        parts.append(data)
    if record.request_id is None:
        parts.append(b"N")
    else:
        data = record.request_id.encode()
        parts.append(b"s%d:" % len(data))
        parts.append(data)
    return b"".join(parts)
