"""The backend seam: the orchestrator talks to any Backend; AnthropicBackend is the real one."""

import asyncio
import gc
import threading
import time
import warnings
import weakref

import pytest

from claude_force_nb import AsyncAgentOrchestrator, CallTimeoutError, ClaudeForceWarning
from claude_force_nb._api.backend import AnthropicBackend
from claude_force_nb._request import Completion, Request
from claude_force_nb.simulator import LocalServer


class QueueBackend:
    """A Backend that answers from a queue and keeps the requests it was sent."""

    offline = False
    origin = "queue"

    def __init__(self):
        self.answers = []
        self.history = []

    def enqueue(self, text: str) -> None:
        self.answers.append(text)

    def describe(self) -> str:
        return "a queue"

    def load(self) -> None:
        pass

    async def send(self, request: Request, *, timeout=None, on_text=None, tools=(), max_turns=8) -> Completion:
        self.history.append(request)
        message = {
            "model": request.model,
            "content": [{"type": "text", "text": self.answers.pop(0)}],
            "usage": {"input_tokens": 3, "output_tokens": 2},
            "stop_reason": "end_turn",
        }
        if on_text is not None:
            on_text(message["content"][0]["text"])
        return Completion(message, 0.001, "req_queue")

    async def aclose(self) -> None:
        pass

    def pace(self):
        return None

    async def count_tokens(self, request: Request) -> int:
        return len(request.task) // 4


async def test_the_orchestrator_runs_on_any_backend():
    backend = QueueBackend()
    backend.enqueue("first")
    backend.enqueue("second")
    orchestrator = AsyncAgentOrchestrator(backend=backend, enable_cache=False)
    results = await orchestrator.execute_multiple([("explainer", "a"), ("summarizer", "b")])
    assert [r.output for r in results] == ["first", "second"]
    assert [r.request_id for r in results] == ["req_queue"] * 2
    assert [request.messages[0]["content"] for request in backend.history] == ["a", "b"]


async def test_the_deadline_counts_the_wait_for_an_answer_not_for_a_slot(server, until):
    orchestrator = AsyncAgentOrchestrator(
        api_key="k", base_url=server.url, max_concurrent=1, timeout_seconds=2, enable_cache=False, max_retries=0
    )
    server.latency = 60  # the first call holds the only slot until woken
    first = asyncio.ensure_future(orchestrator.execute_agent("explainer", "first", timeout=120))
    await until(lambda: server.in_flight == 1)
    second = asyncio.ensure_future(orchestrator.execute_agent("explainer", "second"))
    await asyncio.sleep(3)  # the second call waits for the slot longer than its 2 s deadline
    server.latency = 0
    server.wake()
    assert [(await first).status, (await second).status] == ["ok", "ok"]
    await orchestrator.close()


async def test_a_slow_answer_is_cut_off_at_the_deadline(server):
    server.faults.push("slow", seconds=5)
    backend = AnthropicBackend(api_key="k", base_url=server.url, max_retries=0)
    request = Request.for_task("x", model="claude-sonnet-4-6", max_tokens=10)
    with pytest.raises(CallTimeoutError, match=r"No answer within 0\.2 s"):
        await backend.send(request, timeout=0.2)
    await backend.aclose()


async def test_closing_closes_each_loops_client_on_its_own_loop(own_server, until):
    server = own_server
    backend = AnthropicBackend(api_key="k", base_url=server.url)
    request = Request.for_task("x", model="claude-sonnet-4-6", max_tokens=10)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        answer = asyncio.run_coroutine_threadsafe(backend.send(request), other).result(30)
        assert answer.text.startswith("[synthetic]")
        await backend.send(request)
        assert server.open_connections == 2
        await backend.aclose()
        await until(lambda: server.open_connections == 0)
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join()
        other.close()


def test_the_description_never_shows_a_secret(server):
    backend = AnthropicBackend(api_key="sk-ant-secret", base_url=server.url)
    assert backend.describe() == f"{server.url} with API key"
    assert "sk-ant" not in repr(backend.describe())


async def test_a_kept_exception_never_carries_the_key(server):
    import pickle

    from claude_force_nb import AsyncAgentOrchestrator

    server.faults.push("500")
    orchestrator = AsyncAgentOrchestrator(api_key="sk-ant-very-secret", base_url=server.url, max_retries=0)
    result = await orchestrator.execute_agent("explainer", "x")
    cause = result.error.__cause__
    assert cause.request.headers["authorization"] == "<redacted>" and "x-api-key" not in cause.request.headers
    assert cause.response.status_code == 500 and cause.request.url.path == "/v1/messages"  # the rest is kept
    assert b"sk-ant-very-secret" not in pickle.dumps(cause)
    assert "sk-ant-very-secret" not in repr(vars(cause))
    await orchestrator.close()


@pytest.fixture
def own_server():
    """A server of this test's own: connections other tests left open must not count."""
    with LocalServer() as server:
        yield server


@pytest.fixture
def no_gc():
    # Garbage collection would close forgotten connections sooner or later; these tests ask for closing without it.
    gc.disable()
    yield
    gc.enable()


def wait_for(condition, seconds=30.0):
    # The server notices a closed connection on its own thread; a hang guard, not a speed check.
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_each_asyncio_run_closes_the_connections_it_opened(own_server, no_gc):
    server = own_server
    orchestrator = AsyncAgentOrchestrator(api_key="k", base_url=server.url, enable_cache=False)
    for i in range(3):
        assert asyncio.run(orchestrator.execute_agent("explainer", f"task {i}")).success
        assert wait_for(lambda: server.open_connections == 0), f"after run {i}: {server.open_connections} open"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(orchestrator.close())


def test_a_loop_stopped_without_shutdown_is_named_once_at_close(own_server, no_gc):
    server = own_server
    orchestrator = AsyncAgentOrchestrator(api_key="k", base_url=server.url, enable_cache=False)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(orchestrator.execute_agent("explainer", "x")).success
    loop.close()
    with pytest.warns(ClaudeForceWarning, match=rf"1 API client\(s\) could not be closed: .* at {id(loop):#x}"):
        asyncio.run(orchestrator.close())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(orchestrator.close())


def test_nothing_keeps_an_ended_loop_or_its_client_alive(own_server):
    backend = AnthropicBackend(api_key="k", base_url=own_server.url)
    request = Request.for_task("x", model="claude-sonnet-4-6", max_tokens=10)
    ended = []

    async def one_call():
        ended.append(weakref.ref(asyncio.get_running_loop()))
        await backend.send(request)

    for _ in range(3):
        asyncio.run(one_call())
    gc.collect()
    assert [loop() for loop in ended] == [None, None, None]
    assert backend.pace() is None  # no pacer of an ended loop is held either
    asyncio.run(backend.aclose())
