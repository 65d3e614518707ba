"""The Message Batches endpoints: create, retrieve, list, cancel, delete and results, as the SDK calls them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from . import _batches, _wire
from ._state import ServerState

ROOT = "/v1/messages/batches"
DEFAULT_PAGE = 20
MAX_PAGE = 1000

# Status, extra headers and body, as the HTTP layer writes them.
Reply = tuple[int, dict[str, str], bytes]


class Refused(Exception):
    """An API error for the client: status, error type, message."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def owns(path: str) -> bool:
    return path == ROOT or path.startswith(ROOT + "/")


def handle(state: ServerState, method: str, path: str, query: str, body: Any, base_url: str) -> Reply:
    """Answer one batch request, its JSON body already parsed; the caller has authenticated it."""
    parts = path[len(ROOT) :].strip("/").split("/") if path != ROOT else []
    if not parts:
        if method == "POST":
            return _create(state, body, base_url)
        if method == "GET":
            return _list(state, query, base_url)
    elif len(parts) == 1 and method in ("GET", "DELETE"):
        return (_retrieve if method == "GET" else _delete)(state, parts[0], base_url)
    elif len(parts) == 2 and (method, parts[1]) == ("POST", "cancel"):
        return _cancel(state, parts[0], base_url)
    elif len(parts) == 2 and (method, parts[1]) == ("GET", "results"):
        return _results(state, parts[0])
    raise Refused(404, "not_found_error", f"Not found: {method} {path}")


def _create(state: ServerState, body: Any, base_url: str) -> Reply:
    try:
        requests = _batches.parse(body)
    except ValueError as exc:
        raise Refused(400, "invalid_request_error", str(exc)) from exc
    fates = _batches.settle(requests, state.batch_outcomes)
    # Shaped answers (shape_next) go to the requests that will succeed, in order, as live ones would.
    shapes = [state.take_shape() if fate is None else None for fate in fates]
    batch = state.batches.create(requests, fates, state.batch_seconds, state.batch_expiry_seconds, shapes)
    return _batch(state, batch, base_url)


def _retrieve(state: ServerState, batch_id: str, base_url: str) -> Reply:
    return _batch(state, _find(state, batch_id), base_url)


def _list(state: ServerState, query: str, base_url: str) -> Reply:
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    after_id, before_id = params.get("after_id"), params.get("before_id")
    if after_id is not None and before_id is not None:
        raise Refused(400, "invalid_request_error", "after_id and before_id cannot both be given.")
    try:
        limit = int(params.get("limit", DEFAULT_PAGE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise Refused(400, "invalid_request_error", f"limit: Input should be from 1 to {MAX_PAGE}.")
    try:
        page, has_more = state.batches.page(after_id=after_id, before_id=before_id, limit=limit)
    except KeyError as exc:
        raise Refused(404, "not_found_error", f"No message batch {exc.args[0]!r} to page from.") from exc
    now = state.batches.now()
    data = [batch.to_json(now, base_url) for batch in page]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return 200, {}, _wire.dumps({"data": data, "has_more": has_more, "first_id": first, "last_id": last})


def _cancel(state: ServerState, batch_id: str, base_url: str) -> Reply:
    batch = _find(state, batch_id)
    if batch.status(state.batches.now()) == "ended":
        message = f"Message batch {batch_id} has already ended; there is nothing to cancel."
        raise Refused(400, "invalid_request_error", message)
    state.batches.cancel(batch)
    return _batch(state, batch, base_url)


def _delete(state: ServerState, batch_id: str, base_url: str) -> Reply:
    batch = _find(state, batch_id)
    if batch.status(state.batches.now()) != "ended":
        message = f"Message batch {batch_id} is still processing; cancel it and wait until it has ended to delete it."
        raise Refused(400, "invalid_request_error", message)
    state.batches.delete(batch_id)
    return 200, {}, _wire.dumps({"id": batch_id, "type": "message_batch_deleted"})


def _results(state: ServerState, batch_id: str) -> Reply:
    batch = _find(state, batch_id)
    if batch.status(state.batches.now()) != "ended":
        message = f"Message batch {batch_id} has not ended yet; its results are available once it has."
        raise Refused(400, "invalid_request_error", message)
    headers = {
        "content-type": "application/x-jsonl",
        "content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl",
    }
    return 200, headers, batch.jsonl(state.prompt_cache, state.tool_turns)


def _find(state: ServerState, batch_id: str) -> _batches.Batch:
    batch = state.batches.get(batch_id)
    if batch is None:
        raise Refused(404, "not_found_error", f"No message batch with id {batch_id!r}.")
    return batch


def _batch(state: ServerState, batch: _batches.Batch, base_url: str) -> Reply:
    return 200, {}, _wire.dumps(batch.to_json(state.batches.now(), base_url))
