"""The seam to the Messages API: its :class:`Messages` protocol and the ``AsyncAnthropic`` implementation.

:class:`AnthropicBackend` imports the SDK when a request first has to reach
the API, so a session served from the cache never pays for it. With no key,
token or base URL it sends to the URL its ``offline_endpoint`` function gives.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .._batches.remote import Batches, BatchStatus, batch_params
from .._config import DEFAULT_MAX_RETRIES, ENV_API_KEY, ENV_AUTH_TOKEN, Settings
from .._errors import CallError, ClaudeForceWarning
from .._loops import PerLoop
from .._models import note_lifecycle
from .._request import SYNTHETIC_HEADER, Completion, Request
from .._tools import DEFAULT_MAX_TURNS
from .bounds import within_deadline, within_size
from .endpoint import LOCAL_ORIGIN, LOOPBACK_HOSTS, PUBLIC_BASE_URL, endpoint
from .pacing import Pace, Pacer
from .sdk_errors import batch_error, translate
from .tool_loop import run_loop

if TYPE_CHECKING:
    import anthropic

OFFLINE_KEY = "local-simulator"

# What decides a prompt's tokens: the rest of a request (max_tokens, sampling) is not counted.
_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")


class Messages(Protocol):
    """The Messages API as the pipeline needs it: where it is, one way to send, token counts, pace."""

    @property
    def offline(self) -> bool:
        """True when answers are synthetic (they are then cached apart from real ones)."""

    @property
    def origin(self) -> str:
        """The endpoint answers come from, as the cache files them ("local" for the bundled server)."""

    def describe(self) -> str:
        """Where requests go and how they authenticate, for people to read; never a secret."""

    def load(self) -> None:
        """Get ready to send from this thread (import the SDK, reach the endpoint) before a worker thread must."""

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        on_text: Callable[[str], object] | None = None,
        tools: Sequence[Any] = (),
        max_turns: int = DEFAULT_MAX_TURNS,
    ) -> Completion:
        """Send ``request``; streamed to ``on_text`` when given, or run as the SDK's tool loop over ``tools``.

        Raises :class:`CallError` when it fails, and :class:`CallTimeoutError`
        when the answer takes more than ``timeout`` seconds of waiting for the API.
        """

    async def count_tokens(self, request: Request) -> int:
        """The input tokens ``request`` would use, from the token-counting endpoint; nothing is answered."""

    def pace(self) -> Pace | None:
        """How fast calls go out and the rate limit they ride; None before any call."""

    async def aclose(self) -> None:
        """Release connections."""


class Backend(Messages, Batches, Protocol):
    """Whatever answers the orchestrator's requests: the Messages API and its Message Batches."""


class _Session:
    """One event loop's SDK client and the pacer its calls wait on."""

    __slots__ = ("_paced", "client", "pacer")

    def __init__(self, client: anthropic.AsyncAnthropic, pacer: Pacer | None) -> None:
        self.client, self.pacer = client, pacer
        self._paced: anthropic.AsyncAnthropic | None = None

    def current(self) -> anthropic.AsyncAnthropic:
        """The client for the next call: through the pacer as middleware once it is engaged."""
        if self.pacer is None or not self.pacer.engaged:
            return self.client
        if self._paced is None:
            self._paced = self.client.with_middleware(self.pacer)  # a copy sharing the connections
        return self._paced


class AnthropicBackend:
    """Sends a :class:`Request` through ``AsyncAnthropic`` and returns a :class:`Completion`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        settings: Settings | None = None,
        timer: Callable[[], float] = time.perf_counter,
        pace: bool = True,
        offline_endpoint: Callable[[], str] | None = None,
        **client_options: Any,
    ):
        settings = settings or Settings.from_env()
        self.api_key = api_key or settings.api_key
        # An explicit key wins over a token from the environment.
        self.auth_token = None if api_key else settings.auth_token
        self._base_url = base_url or settings.base_url
        self.max_retries = max_retries
        self._offline_endpoint = offline_endpoint
        self._origin: str | None = None
        self._timer = timer
        self._client_options = client_options
        # httpx connection pools belong to the loop that opened them; so does
        # each client's pacer, whose buckets wait on that loop.
        self._sessions: PerLoop[_Session] = PerLoop(self._new_session, lambda session: session.client.close())
        self._pacing = pace
        self._stranded_said = False

    @property
    def offline(self) -> bool:
        """True when answers come from the bundled local server."""
        return not self.api_key and not self.auth_token and not self._base_url

    @property
    def origin(self) -> str:
        """The endpoint, normalised: scheme, host, port (when not the default) and path; "local" when offline."""
        if self._origin is None:  # read with every answer: worked out once
            self._origin = LOCAL_ORIGIN if self.offline else endpoint(self._base_url or PUBLIC_BASE_URL)
        return self._origin

    @property
    def base_url(self) -> str:
        """Where requests go; offline, the URL ``offline_endpoint`` gives (it may start a local server)."""
        if self._base_url:
            return self._base_url
        if not self.offline:
            return PUBLIC_BASE_URL
        if self._offline_endpoint is None:
            raise CallError(f"No API key: set {ENV_API_KEY}, or pass api_key= or base_url=.")
        return self._offline_endpoint()

    def describe(self) -> str:
        if self.offline:
            return "local Messages API server (synthetic answers)"
        credential = "API key" if self.api_key else f"auth token ({ENV_AUTH_TOKEN})" if self.auth_token else "no key"
        return f"{self.base_url} with {credential}"

    def load(self) -> None:
        """Import the SDK, and start the local server when offline, on the calling thread.

        The notebook layer calls it before a sweep that will need the API
        starts on a worker thread, where the import would crawl.
        """
        import anthropic  # noqa: F401

        _ = self.base_url  # starts the local server (and prints its notice) here, not on the worker

    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client for the running event loop."""
        return self._sessions.get().current()

    def pace(self) -> Pace | None:
        """The pace of the busiest loop (the kernel's, or a background sweep's)."""
        paces = [session.pacer.pace() for session in self._sessions.values() if session.pacer is not None]
        return max(paces, key=lambda pace: pace.requests_per_second, default=None)

    def _pacer(self) -> Pacer | None:
        session = self._sessions.find()
        return session.pacer if session is not None else None

    def _answered(self, headers: Any, status: int) -> None:
        """Let the pacer read an answer its middleware did not (it was not engaged when the call went out)."""
        pacer = self._pacer()
        if pacer is not None:
            pacer.answered(headers, status)

    def _answered_with(self, exc: BaseException) -> None:
        response = getattr(exc, "response", None)  # an APIStatusError's: a 429, say, after the SDK's retries
        if response is not None and hasattr(response, "status_code"):
            self._answered(response.headers, response.status_code)

    def _finished(self, kwargs: dict[str, Any], usage: Any) -> None:
        pacer = self._pacer()
        if pacer is not None and isinstance(usage, dict):
            pacer.finished(kwargs, usage)

    def _new_session(self) -> _Session:
        pacer = Pacer(self.origin) if self._pacing else None
        return _Session(self._new_client(), pacer)

    def _new_client(self) -> anthropic.AsyncAnthropic:
        import anthropic

        options: dict[str, Any] = {"max_retries": self.max_retries, **self._client_options}
        # No middleware of ours: any sends each request down the SDK's slower path (its headers built
        # three times). The session adds the pacer once it is engaged; a tool loop adds its own.
        base_url = self.base_url
        if base_url != PUBLIC_BASE_URL:
            options["base_url"] = base_url
            # Loopback must not go through HTTP(S)_PROXY.
            if urlsplit(base_url).hostname in LOOPBACK_HOSTS and "http_client" not in options:
                options["http_client"] = anthropic.DefaultAsyncHttpxClient(trust_env=False)
        if self.auth_token and not self.api_key:
            return anthropic.AsyncAnthropic(auth_token=self.auth_token, **options)
        return anthropic.AsyncAnthropic(api_key=self.api_key or OFFLINE_KEY, **options)

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None = None,
        on_text: Callable[[str], object] | None = None,
        tools: Sequence[Any] = (),
        max_turns: int = DEFAULT_MAX_TURNS,
    ) -> Completion:
        """One ``messages.create`` call, a stream, or the SDK's tool runner; SDK errors become :class:`CallError`."""
        # The client (and the SDK import behind it, a second or more) comes
        # first: the deadline is for the answer, not for loading the library,
        # nor for waiting until the rate limits let the call go.
        session = self._sessions.get()
        note_lifecycle(request.model)
        kwargs = within_size(request.to_kwargs())
        async with self._admitted(kwargs):
            # Chosen once admitted: the pacer may have engaged while this call waited for its turn.
            client = session.current()
            if tools:  # the deadline covers the whole loop
                work = self._run_tools(client, kwargs, tools, max_turns)
            elif on_text is not None:
                work = self._stream(client, kwargs, on_text, timeout)
            else:
                work = self._create(client, kwargs, timeout)
            return await within_deadline(work, timeout)

    def _admitted(self, kwargs: dict[str, Any]) -> contextlib.AbstractAsyncContextManager[object]:
        """Wait until the rate limits admit the call's first attempt; its retries are admitted as they come."""
        pacer = self._pacer()
        return pacer.admitted(kwargs) if pacer is not None else contextlib.nullcontext()

    async def _create(
        self, client: anthropic.AsyncAnthropic, kwargs: dict[str, Any], timeout: float | None
    ) -> Completion:
        import anthropic  # loaded by client() by now

        if timeout is not None:
            kwargs["timeout"] = timeout
        start = self._timer()
        try:
            # The raw JSON is what we keep; building the SDK's pydantic model
            # only to dump it back would cost more than the rest of the call.
            response = await client.messages.with_raw_response.create(**kwargs)
            message = await response.json()
        except anthropic.AnthropicError as exc:
            self._answered_with(exc)
            raise self._error(exc) from exc
        self._answered(response.headers, response.status_code)
        self._finished(kwargs, message.get("usage"))
        synthetic = SYNTHETIC_HEADER in response.headers
        return Completion(message, self._timer() - start, response.request_id, self.origin, synthetic)

    async def _stream(
        self,
        client: anthropic.AsyncAnthropic,
        kwargs: dict[str, Any],
        on_text: Callable[[str], object],
        timeout: float | None,
    ) -> Completion:
        import anthropic

        if timeout is not None:
            kwargs["timeout"] = timeout
        start = self._timer()
        try:
            async with client.messages.stream(**kwargs) as stream:
                async for text in stream.text_stream:
                    on_text(text)
                message = await stream.get_final_message()
                request_id = stream.request_id
                synthetic = SYNTHETIC_HEADER in stream.response.headers
                self._answered(stream.response.headers, stream.response.status_code)
        except anthropic.AnthropicError as exc:
            self._answered_with(exc)
            raise self._error(exc) from exc
        answer = message.model_dump(mode="json", exclude_none=True)
        self._finished(kwargs, answer.get("usage"))
        return Completion(answer, self._timer() - start, request_id, self.origin, synthetic)

    async def count_tokens(self, request: Request) -> int:
        """``messages.count_tokens`` for the request's prompt; SDK errors become :class:`CallError`."""
        import anthropic

        client = self.client()
        kwargs = within_size({k: v for k, v in request.to_kwargs().items() if k in _COUNTED})
        try:
            counted = await client.messages.count_tokens(**kwargs)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        return counted.input_tokens

    async def _run_tools(
        self, client: anthropic.AsyncAnthropic, kwargs: dict[str, Any], tools: Sequence[Any], max_turns: int
    ) -> Completion:
        import anthropic

        start = self._timer()
        pacer = self._pacer()
        if pacer is not None and pacer not in client.middleware:  # every reply of the loop is paced and read
            client = client.with_middleware(pacer)
        try:
            loop = await run_loop(client, kwargs, tools, max_turns)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        for usage in loop.usages:
            self._finished(kwargs, usage)
        return Completion(loop.final, self._timer() - start, None, self.origin, loop.synthetic)

    async def create_batch(self, requests: list[tuple[str, Request]]) -> BatchStatus:
        body = [{"custom_id": custom_id, "params": batch_params(request)} for custom_id, request in requests]
        return await self._batch_call(lambda batches: batches.create(requests=body))

    async def retrieve_batch(self, batch_id: str) -> BatchStatus:
        return await self._batch_call(lambda batches: batches.retrieve(batch_id))

    async def cancel_batch(self, batch_id: str) -> BatchStatus:
        return await self._batch_call(lambda batches: batches.cancel(batch_id))

    async def recent_batches(self, limit: int = 20) -> list[BatchStatus]:
        import anthropic

        client = self.client()
        try:
            response = await client.messages.batches.with_raw_response.list(limit=limit)
            page = await response.json()
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        synthetic = SYNTHETIC_HEADER in response.headers
        batches = page.get("data", ()) if isinstance(page, dict) else ()
        return [BatchStatus.of(batch, synthetic=synthetic) for batch in batches]

    async def batch_results(self, batch: BatchStatus) -> AsyncIterator[tuple[str, Completion | CallError]]:
        import anthropic

        client = self.client()
        try:
            async for line in await client.messages.batches.results(batch.id):
                outcome = line.result
                if outcome.type == "succeeded":
                    message = outcome.message.model_dump(mode="json", exclude_none=True)
                    # What the Batches API answers is billed at its rate; say so where pricing looks.
                    message.setdefault("usage", {}).setdefault("service_tier", "batch")
                    yield line.custom_id, Completion(message, 0.0, None, self.origin, batch.synthetic)
                else:
                    yield line.custom_id, batch_error(outcome, batch.id)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc

    async def _batch_call(self, send: Callable[[Any], Awaitable[Any]]) -> BatchStatus:
        import anthropic

        client = self.client()
        try:
            response = await send(client.messages.batches.with_raw_response)
            batch = await response.json()
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from exc
        return BatchStatus.of(batch, synthetic=SYNTHETIC_HEADER in response.headers)

    async def aclose(self) -> None:
        """Close each loop's client on its own loop; say once if a loop ended without letting it."""
        stranded = await self._sessions.aclose()
        if stranded and not self._stranded_said:
            self._stranded_said = True
            loops = ", ".join(stranded)
            warnings.warn(
                f"{len(stranded)} API client(s) could not be closed: their event loops ({loops}) were stopped "
                "without asyncio.run's shutdown, and their connections close only when garbage-collected. Run "
                "each loop with asyncio.run, or await close() before its loop stops.",
                ClaudeForceWarning,
                stacklevel=3,
            )

    def _error(self, exc: anthropic.AnthropicError) -> CallError:
        return translate(exc, where=self.base_url, credentials=bool(self.api_key or self.auth_token))
