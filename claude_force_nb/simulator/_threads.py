"""Message threads (beta): the server holds a conversation, so each turn sends only its new messages.

A request with ``"thread": {"type": "create"}`` (and the
``message-threads-2026-08-12`` beta header) is answered as usual, and the
conversation, its reply included, is kept under the reply's ``id`` with the
request's ``system`` and ``tools``. ``{"type": "continue",
"previous_message_id": id}`` sends only the new messages and leaves
``system`` and ``tools`` out; the server rebuilds the whole request before
answering, and keeps the result under the new reply's id. A thread expires
``TTL_SECONDS`` after its last request, on the server clock; continuing an
expired or unknown one is a 404 whose ``error.details.error_code`` is
``thread_not_found``, from which the SDK recovers by sending the whole
conversation again. A reply may be continued more than once (the branches
are independent); the API refuses that, which this server does not model.
The SDK's tool runner threads its requests this way by default.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

BETA = "message-threads-2026-08-12"
TTL_SECONDS = 300.0
CREATE_ONLY = ("system", "tools")
MAX_THREADS = 10_000


class Refused(Exception):
    """A thread request the API refuses: status, error type, message and the ``error_code`` detail."""

    def __init__(self, status: int, kind: str, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code


class _Held(NamedTuple):
    messages: list[Any]
    fields: dict[str, Any]  # the create-only fields, as the create request sent them
    expires: float


class Threads:
    """Held conversations by reply id, each with its expiry on ``timer``; thread-safe."""

    def __init__(self, timer: Callable[[], float]):
        self._timer = timer
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def expand(self, body: dict[str, Any], betas: str) -> dict[str, Any]:
        """The whole request that ``body`` stands for: itself, or for a continue the thread plus its new messages."""
        thread = body.get("thread")
        if thread is None:
            return body
        if BETA not in (part.strip() for part in betas.split(",")):
            raise Refused(400, "invalid_request_error", f"thread: Message threads need the beta header {BETA}.")
        kind = thread.get("type") if isinstance(thread, dict) else None
        if kind == "create":
            return body
        if kind != "continue":
            raise Refused(400, "invalid_request_error", "thread.type: Input should be 'create' or 'continue'.")
        previous = thread.get("previous_message_id")
        if not isinstance(previous, str) or not previous:
            raise Refused(400, "invalid_request_error", "thread.previous_message_id: Field required (a message id).")
        repeated = [f"`{name}`" for name in CREATE_ONLY if name in body]
        if repeated:
            message = (
                f"{' and '.join(repeated)} cannot be sent on a continue: the thread keeps those it was created with."
            )
            raise Refused(400, "invalid_request_error", message)
        if not isinstance(body.get("messages", []), list):
            raise Refused(400, "invalid_request_error", "messages: Input should be a list of messages.")
        now = self._timer()
        with self._lock:
            held = self._held.get(previous)
            if held is None or held.expires <= now:
                message = f"No thread holds {previous!r}: it expired or was never created. Send the whole conversation."
                raise Refused(404, "not_found_error", message, "thread_not_found")
            self._held[previous] = held._replace(expires=now + TTL_SECONDS)
        return {**body, **held.fields, "messages": [*held.messages, *body.get("messages", [])]}

    def keep(self, body: Mapping[str, Any], message_id: str, reply: Sequence[Mapping[str, Any]]) -> None:
        """Hold the conversation ``body`` (as expanded) and its ``reply`` under ``message_id``, if it is threaded."""
        if not isinstance(body.get("thread"), dict):
            return
        messages = [*body["messages"], {"role": "assistant", "content": [dict(block) for block in reply]}]
        fields = {name: body[name] for name in CREATE_ONLY if name in body}
        now = self._timer()
        with self._lock:
            self._held[message_id] = _Held(messages, fields, now + TTL_SECONDS)
            if len(self._held) > MAX_THREADS:
                self._held = {key: held for key, held in self._held.items() if held.expires > now}

    def clear(self) -> None:
        with self._lock:
            self._held.clear()

    def __len__(self) -> int:
        now = self._timer()
        with self._lock:
            return sum(1 for held in self._held.values() if held.expires > now)
