"""SDK exceptions as this package's errors: one line that says what happened and what to do.

The SDK's own exception is kept as the cause (``raise ... from exc``), with
the credentials in the request it refers to blanked out, so a failed result
can be printed or pickled without writing out the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._config import ENV_API_KEY, ENV_BASE_URL
from .._errors import CallError, CallTimeoutError

if TYPE_CHECKING:
    import anthropic

_CREDENTIAL_HEADERS = ("x-api-key", "authorization")


def translate(exc: anthropic.AnthropicError, *, where: str, credentials: bool) -> CallError:
    """``exc`` as a :class:`CallError`, its request's credentials redacted (chain it with ``from``)."""
    redact(exc)
    return call_error(exc, where=where, credentials=credentials)


_STATUS_HINTS = {
    400: "Fix the request (see the message above).",
    401: f"Check {ENV_API_KEY}: the key was rejected.",
    403: "The key lacks permission for this model or feature.",
    404: "Check the model name.",
    413: "The request is over the API's size limit; send fewer or smaller images and files, or a shorter task.",
    429: "Rate limited even after retries; lower the concurrency or try again later.",
    500: "The API had an internal error; try again later.",
    529: "The API is overloaded; try again later.",
}


def call_error(exc: anthropic.AnthropicError, *, where: str = "the API", credentials: bool = True) -> CallError:
    """A one-line, actionable CallError for an SDK exception (chain it with ``from``).

    ``where`` names the endpoint; ``credentials`` says whether a key or token was sent.
    """
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return CallTimeoutError("The request timed out; raise the timeout or try again later.")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        detail = error.get("message") or exc.message
        kind = error.get("type") or type(exc).__name__
        hint = _STATUS_HINTS.get(status) or ("Try again later." if status >= 500 else "")
        if status == 401 and not credentials:
            hint = f"Set {ENV_API_KEY} to your Anthropic API key."
        rid = f" (request id {exc.request_id})" if exc.request_id else ""
        return CallError(
            f"API error {status} {kind}: {detail}{rid}. {hint}".rstrip(), status=status, request_id=exc.request_id
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return CallError(
            f"Could not connect to {where}. Check the network, {ENV_BASE_URL} and proxy "
            "settings (NO_PROXY must cover loopback)."
        )
    return CallError(f"The Anthropic SDK failed: {type(exc).__name__}: {exc}")


def batch_error(outcome: Any, batch_id: str) -> CallError:
    """The error a batch result that did not succeed stands for."""
    if outcome.type == "errored":
        error = getattr(outcome.error, "error", None)
        kind, message = getattr(error, "type", "api_error"), getattr(error, "message", "")
        return CallError(f"The Message Batch {batch_id} answered this request with {kind}: {message}")
    how = "expired" if outcome.type == "expired" else "was canceled"
    return CallError(f"The Message Batch {batch_id} {how} before this request was processed; re-run to resubmit it.")


def redact(exc: BaseException) -> None:
    """Blank the credentials in the request a kept SDK exception refers to; keep everything else about it.

    A failed result keeps its exception, and pickling or printing it must not write out the key.
    """
    requests = [getattr(exc, "request", None), _response_request(exc)]
    for request in {id(r): r for r in requests if r is not None}.values():
        headers = getattr(request, "headers", None)
        if headers is None:
            continue
        for name in _CREDENTIAL_HEADERS:
            if name in headers:
                headers[name] = "<redacted>"


def _response_request(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    try:
        return response.request if response is not None else None
    except RuntimeError:  # an httpx response built without a request
        return None
