"""The HTTP layer: a threading server with keep-alive and the Messages API request handler."""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import _checks as checks
from .._request import SYNTHETIC_HEADER
from . import _answers, _batch_api, _batches, _caching, _threads, _validation, _wire
from ._faults import DEFAULT_EVENTS_BEFORE_ERROR, DEFAULT_SLOW_SECONDS, ERRORS, Fault
from ._limits import retry_headers
from ._state import MAX_LATENCY, RequestRecord, ServerState

LATENCY_HEADER = "x-simulator-latency"
_SECRET_HEADERS = ("x-api-key", "authorization")
_REASONS = {529: "Overloaded"}
# The largest body each endpoint reads: 32 MB for the Messages API, 256 MB for a batch.
MAX_MESSAGES_BYTES = 32 * 1024 * 1024
_BODY_LIMITS = {
    _batch_api.ROOT: (_batches.MAX_BYTES, "a batch"),
    "/v1/messages": (MAX_MESSAGES_BYTES, "the Messages API"),
    "/v1/messages/count_tokens": (MAX_MESSAGES_BYTES, "the Messages API"),
}

# A response before it is written: status, extra headers, and a JSON body or a list of SSE events.
_Reply = tuple[int, dict[str, str], "bytes | list[bytes]"]


class MessagesHTTPServer(ThreadingHTTPServer):
    """One thread per connection; tracks open sockets so stop() can close idle keep-alive ones."""

    daemon_threads = True
    # Idle keep-alive threads would otherwise make server_close() wait for clients to hang up.
    block_on_close = False
    # The default backlog of 5 drops SYNs when a benchmark opens many connections at once.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: ServerState):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, MessagesHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.state.connected()
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    @property
    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def close_all(self) -> None:
        with self._open_lock:
            open_sockets, self._open = self._open, set()
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up mid-response is expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class MessagesHandler(BaseHTTPRequestHandler):
    """Serves ``/v1/messages``, ``/v1/messages/count_tokens`` and ``/v1/messages/batches``; 404 for anything else."""

    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle plus delayed ACKs add about 40 ms to each small response.
    disable_nagle_algorithm = True
    server: MessagesHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        state = self.server.state
        request_id = "req_" + secrets.token_hex(12)
        path, _, query = self.path.partition("?")
        # A body over the limit is read and dropped, then refused with 413: a client still sending
        # its body when the answer came would see a reset connection, not the 413.
        limit, limited = _BODY_LIMITS.get(path, (0, ""))
        oversize = self.command == "POST" and bool(limited) and self._length() > limit
        raw = self._discard_body() if oversize else self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        for name in _SECRET_HEADERS:
            if name in headers:
                headers[name] = "<redacted>"
        record = RequestRecord(self.command, path, headers, None, request_id, state.timer())
        state.record(record)
        counted = self.command == "POST" and path == "/v1/messages"
        token = state.enter() if counted else 0
        reply: _Reply | None
        try:
            if oversize:
                message = f"Request exceeds the maximum allowed number of bytes ({limit:,} for {limited})."
                reply = self._error(413, "request_too_large", message, request_id)
            elif _batch_api.owns(path):
                reply = self._batch(state, record, query, raw)
            else:
                reply = self._reply(state, record, raw)
        except Exception as exc:  # a bug here should reach the client as a 500, not a dropped socket
            reply = self._error(500, "api_error", f"Simulator failure: {exc!r}", request_id)
        finally:
            if counted:
                state.leave(token)
        record.finished = state.timer()
        if reply is None:
            self.close_connection = True
            return
        record.status = reply[0]
        self._write(*reply, request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _length(self) -> int:
        return int(self.headers.get("content-length") or 0)

    def _discard_body(self) -> bytes:
        left = self._length()
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        return b""

    def _read_body(self) -> bytes:
        length = self._length()
        return self.rfile.read(length) if length > 0 else b""

    def _batch(self, state: ServerState, record: RequestRecord, query: str, raw: bytes) -> _Reply:
        """Authenticate, wait out the latency and hand over to the batch endpoints."""
        rid = record.request_id
        problem = self._auth_problem(state)
        if problem:
            return self._error(401, "authentication_error", problem, rid)
        try:
            record.body = json.loads(raw) if raw else None
            latency = self._latency(state)
        except ValueError as exc:
            return self._error(400, "invalid_request_error", f"Could not parse the request: {exc}", rid)
        state.sleep(latency)
        # The results URL points back at this server, by the name the client used for it.
        host = self.headers.get("host")
        if not host:  # an HTTP/1.0 client: the address it reached
            address, port = self.connection.getsockname()[:2]
            host = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        try:
            return _batch_api.handle(state, self.command, record.path, query, record.body, f"http://{host}")
        except _batch_api.Refused as refused:
            return self._error(refused.status, refused.kind, refused.message, rid)

    def _latency(self, state: ServerState) -> float:
        if LATENCY_HEADER not in self.headers:
            return state.latency
        return checks.delay(LATENCY_HEADER, float(self.headers[LATENCY_HEADER]), high=MAX_LATENCY)

    def _reply(self, state: ServerState, record: RequestRecord, raw: bytes) -> _Reply | None:
        """Route, authenticate and validate; None means drop the connection."""
        rid = record.request_id
        route = (self.command, record.path)
        if route not in (("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")):
            return self._error(404, "not_found_error", f"Not found: {self.command} {record.path}", rid)
        problem = self._auth_problem(state)
        if problem:
            return self._error(401, "authentication_error", problem, rid)
        try:
            record.body = body = json.loads(raw)
            latency = self._latency(state)
        except ValueError as exc:
            return self._error(400, "invalid_request_error", f"Could not parse the request: {exc}", rid)
        count_only = record.path.endswith("/count_tokens")
        if not count_only and isinstance(body, dict):
            try:
                body = state.threads.expand(body, self.headers.get("anthropic-beta") or "")
            except _threads.Refused as refused:
                error = _wire.error_json(refused.kind, refused.message, rid, refused.code)
                return refused.status, {}, _json(error)
        try:
            _validation.validate(body, count_only=count_only)
        except _validation.UnknownModel as exc:
            return self._error(404, "not_found_error", str(exc), rid)
        except _validation.InvalidRequest as exc:
            return self._error(400, "invalid_request_error", str(exc), rid)
        if count_only:
            state.sleep(latency)
            return 200, {}, _json({"input_tokens": _answers.count_input_tokens(body)})
        cache = state.prompt_cache.plan(body)
        if state.limiter is not None:
            # As on the API, tokens read from the prompt cache do not count towards input tokens per minute.
            admission = state.limiter.admit(cache.total - cache.usage.read, body["max_tokens"])
            if admission.wait:
                headers = admission.headers | retry_headers(admission.wait)
                return 429, headers, _json(_wire.error_json("rate_limit_error", admission.message(), rid))
        state.sleep(latency)
        return self._message(state, record, body, cache)

    def _message(
        self, state: ServerState, record: RequestRecord, body: dict[str, Any], cache: _caching.Plan
    ) -> _Reply | None:
        """Answer a valid ``/v1/messages`` request, unless a fault says otherwise."""
        rid = record.request_id
        record.stream = stream = bool(body.get("stream"))

        def limits(used: int) -> dict[str, str]:
            # Gives back the output tokens reserved at admission that the answer did not use.
            return state.limiter.settle(body["max_tokens"], used) if state.limiter is not None else {}

        fault = state.faults.take()
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "drop":
                limits(0)
                return None
            if fault.kind == "slow":
                state.sleep(float(fault.options.get("seconds", DEFAULT_SLOW_SECONDS)))
            elif fault.kind in ERRORS or not stream:  # stream_error on a plain request is a 529
                status, fault_headers, fault_body = self._fault_error(fault, rid)
                return status, limits(0) | fault_headers, fault_body
        # Only an answer writes to the prompt cache: a request that failed read and wrote nothing.
        state.prompt_cache.commit(cache)
        answer = _answers.make_answer(body, state.take_shape(), cache.usage, state.tool_turns)
        headers = limits(answer.output_tokens)
        message_id = "msg_" + secrets.token_hex(12)
        state.threads.keep(body, message_id, answer.blocks)
        if not stream:
            return 200, headers, _json(_wire.message_json(answer, message_id=message_id, model=body["model"]))
        events = list(_wire.stream_events(answer, message_id=message_id, model=body["model"]))
        if fault is not None and fault.kind == "stream_error":
            keep = 3 + int(fault.options.get("after", DEFAULT_EVENTS_BEFORE_ERROR))  # start, block start, ping
            _, kind, message = ERRORS["529"]
            error = _wire.error_json(kind, fault.options.get("message", message), rid)
            events = [*events[:keep], _wire.sse("error", error)]
        return 200, headers, events

    def _auth_problem(self, state: ServerState) -> str | None:
        key = self.headers.get("x-api-key")
        if key is None:
            scheme, _, token = (self.headers.get("authorization") or "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        if key is None:
            return "x-api-key header is required"
        if state.api_key is not None and key != state.api_key:
            return "invalid x-api-key"
        return None

    def _fault_error(self, fault: Fault, request_id: str) -> _Reply:
        status, kind, message = ERRORS.get(fault.kind, ERRORS["529"])
        body = _json(_wire.error_json(kind, fault.options.get("message", message), request_id))
        return status, fault.error_headers(), body

    @staticmethod
    def _error(status: int, kind: str, message: str, request_id: str) -> _Reply:
        return status, {}, _json(_wire.error_json(kind, message, request_id))

    def _write(self, status: int, headers: dict[str, str], body: bytes | list[bytes], request_id: str) -> None:
        reason = _REASONS.get(status) or self.responses.get(status, ("Error",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"request-id: {request_id}"]
        if self.server.state.mark_synthetic:
            lines.append(f"{SYNTHETIC_HEADER}: 1")
        if isinstance(body, list):
            lines += ["content-type: text/event-stream; charset=utf-8", "cache-control: no-cache"]
            lines.append("transfer-encoding: chunked")
            # One chunk per event, as the API sends them; the final empty chunk keeps the connection reusable.
            body = b"".join([b"%x\r\n%s\r\n" % (len(event), event) for event in body]) + b"0\r\n\r\n"
        else:
            kind = headers.get("content-type", "application/json")
            lines += [f"content-type: {kind}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name != "content-type"]
        if self.close_connection:
            lines.append("connection: close")
        # Head and body in one send: on a TCP_NODELAY socket two writes mean two packets.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
