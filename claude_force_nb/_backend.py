"""The seam to the Messages API: ``AsyncAnthropic`` behind one small class.

With no API key and no base URL the backend starts the local Messages API
server (synthetic answers) on a free loopback port and says so once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anthropic

from ._config import DEFAULT_MAX_RETRIES, ENV_API_KEY, Settings
from ._errors import CallError, CallTimeoutError
from ._request import Completion, Request

OFFLINE_KEY = "local-simulator"
OFFLINE_NOTICE = (
    "claude-force-nb: ANTHROPIC_API_KEY is not set, so answers are synthetic, from the local "
    f"Messages API server on 127.0.0.1. Set {ENV_API_KEY} (then %reload_ext claude_force_nb, or restart) "
    "to talk to Claude."
)
PUBLIC_BASE_URL = "https://api.anthropic.com"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

_local_lock = threading.Lock()
_local_server = None


def local_server_url(latency: float, *, announce: bool = True) -> str:
    """URL of this process's local Messages API server, started on first use."""
    global _local_server
    with _local_lock:
        if _local_server is None:
            from .simulator import LocalServer

            _local_server = LocalServer(latency=latency).start()
            if announce:
                print(OFFLINE_NOTICE, file=sys.stderr)
        return _local_server.url


class AnthropicBackend:
    """Sends a :class:`Request` and returns a :class:`Completion`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        settings: Settings | None = None,
        timer: Callable[[], float] = time.perf_counter,
        **client_options: Any,
    ):
        settings = settings or Settings.from_env()
        self.api_key = api_key or settings.api_key
        # An explicit key wins over a token from the environment.
        self._auth_token = None if api_key else settings.auth_token
        self._base_url = base_url or settings.base_url
        self.max_retries = max_retries
        self._simulator_latency = settings.simulator_latency
        self._timer = timer
        self._client_options = client_options
        # httpx connection pools belong to the loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def offline(self) -> bool:
        """True when answers come from the bundled local server."""
        return not self.api_key and not self._auth_token and not self._base_url

    @property
    def base_url(self) -> str:
        """Where requests go (starts the local server when offline)."""
        if self._base_url:
            return self._base_url
        return local_server_url(self._simulator_latency) if self.offline else PUBLIC_BASE_URL

    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client for the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._new_client()
        return client

    def _new_client(self) -> anthropic.AsyncAnthropic:
        options: dict[str, Any] = {"max_retries": self.max_retries, **self._client_options}
        base_url = self.base_url
        if base_url != PUBLIC_BASE_URL:
            options["base_url"] = base_url
            # Loopback must not go through HTTP(S)_PROXY.
            if urlsplit(base_url).hostname in LOOPBACK_HOSTS and "http_client" not in options:
                options["http_client"] = anthropic.DefaultAsyncHttpxClient(trust_env=False)
        if self._auth_token and not self.api_key:
            return anthropic.AsyncAnthropic(auth_token=self._auth_token, **options)
        return anthropic.AsyncAnthropic(api_key=self.api_key or OFFLINE_KEY, **options)

    async def complete(self, request: Request, *, timeout: float | None = None) -> Completion:
        """One ``messages.create`` call; SDK errors become :class:`CallError`."""
        kwargs = request.to_kwargs()
        if timeout is not None:
            kwargs["timeout"] = timeout
        start = self._timer()
        try:
            # The raw JSON is what we keep; building the SDK's pydantic model
            # only to dump it back would cost more than the rest of the call.
            response = await self.client().messages.with_raw_response.create(**kwargs)
            message = await response.json()
        except anthropic.AnthropicError as exc:
            raise call_error(exc, self) from exc
        return Completion(message, self._timer() - start, response.request_id)

    async def stream(
        self, request: Request, on_text: Callable[[str], object], *, timeout: float | None = None
    ) -> Completion:
        """Stream the answer, calling ``on_text`` with each chunk; return the final message."""
        kwargs = request.to_kwargs()
        if timeout is not None:
            kwargs["timeout"] = timeout
        start = self._timer()
        try:
            async with self.client().messages.stream(**kwargs) as stream:
                async for text in stream.text_stream:
                    on_text(text)
                message = await stream.get_final_message()
                request_id = stream.request_id
        except anthropic.AnthropicError as exc:
            raise call_error(exc, self) from exc
        return Completion(message.model_dump(mode="json", exclude_none=True), self._timer() - start, request_id)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), weakref.WeakKeyDictionary()
        for client in clients:
            try:
                await client.close()
            except RuntimeError:
                pass  # its loop is already closed; nothing left to release


_STATUS_HINTS = {
    400: "Fix the request (see the message above).",
    401: f"Check {ENV_API_KEY}: the key was rejected.",
    403: "The key lacks permission for this model or feature.",
    404: "Check the model name.",
    413: "The request is too large; shorten the task.",
    429: "Rate limited even after retries; lower the concurrency or try again later.",
    500: "The API had an internal error; try again later.",
    529: "The API is overloaded; try again later.",
}


def call_error(exc: anthropic.AnthropicError, backend: AnthropicBackend | None = None) -> CallError:
    """A one-line, actionable CallError for an SDK exception (chain it with ``from``)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return CallTimeoutError("The request timed out; raise the timeout or try again later.")
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        detail = error.get("message") or exc.message
        kind = error.get("type") or type(exc).__name__
        hint = _STATUS_HINTS.get(status) or ("Try again later." if status >= 500 else "")
        if status == 401 and backend is not None and not backend.api_key and not backend._auth_token:
            hint = f"Set {ENV_API_KEY} to your Anthropic API key."
        rid = f" (request id {exc.request_id})" if exc.request_id else ""
        return CallError(f"API error {status} {kind}: {detail}{rid}. {hint}".rstrip(), status=status,
                         request_id=exc.request_id)
    if isinstance(exc, anthropic.APIConnectionError):
        where = backend.base_url if backend is not None else "the API"
        return CallError(f"Could not connect to {where}. Check the network, ANTHROPIC_BASE_URL and proxy "
                         "settings (NO_PROXY must cover loopback).")
    return CallError(f"The Anthropic SDK failed: {type(exc).__name__}: {exc}")
