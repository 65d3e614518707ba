"""Moving answers between the cache file and the team database: ``%agent cache push`` and ``pull``.

Every row is checked on the way. One this process can verify goes if it has
not expired; one that fails its signature (edited) never goes; one signed
with a secret this process does not hold goes as it is, to be kept and not
served by whoever does not hold it either, as in any file. Rows the receiver
already holds, signed the same, are left alone, so moving twice moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .rows import Record, payload
from .secret import FOREIGN, VALID, Signer


class Holder(Protocol):
    """A store rows can be read from and written to as they are signed."""

    def records(self) -> list[Record]: ...
    def take(self, records: list[Record]) -> int: ...


@dataclass(frozen=True)
class Moved:
    """What a push or pull did."""

    read: int  # rows the source holds
    copied: int  # new or different at the receiver
    present: int  # the receiver held them already, signed the same
    foreign: int  # signed with a secret not held here, copied as they are (kept, not served)
    tampered: int  # failed their signature: not copied
    expired: int  # past their expiry: not copied

    def describe(self, source: str, receiver: str) -> str:
        line = f"{self.copied:,} answers copied from {source} to {receiver}; {self.present:,} were there already"
        notes = [
            f"{self.foreign:,} signed with another secret (copied, kept, not served)" if self.foreign else "",
            f"{self.tampered:,} failed their signature (not copied)" if self.tampered else "",
            f"{self.expired:,} expired (not copied)" if self.expired else "",
        ]
        return line + "".join(f"; {note}" for note in notes if note) + "."


def move(source: Holder, receiver: Holder, signer: Signer, now: Callable[[], float]) -> Moved:
    """Copy ``source``'s rows that may go into ``receiver`` (see the module docstring)."""
    records = source.records()
    going: list[Record] = []
    foreign = tampered = expired = 0
    moment = now()
    for record in records:
        verdict = _verdict(signer, record)
        if verdict == FOREIGN:
            foreign += 1
            going.append(record)
        elif verdict != VALID:
            tampered += 1
        elif record.expires <= moment:
            expired += 1
        else:
            going.append(record)
    copied = receiver.take(going) if going else 0
    return Moved(len(records), copied, len(going) - copied, foreign, tampered, expired)


def _verdict(signer: Signer, record: Record) -> str:
    try:
        data = payload(record)
    except (TypeError, ValueError, AttributeError):
        return FOREIGN if not signer.holds(record.key_id) else "tampered"
    return signer.verify(data, record.signature, record.key_id)
