import asyncio
import sqlite3
import warnings

import anthropic
import pytest

from claude_force_nb import (
    DEFAULT_MODEL,
    AgentNotFoundError,
    AsyncAgentOrchestrator,
    CacheMissError,
    Call,
    CallError,
    CallTimeoutError,
    ClaudeForceWarning,
)
from claude_force_nb._config import Settings
from claude_force_nb._errors import ModelNotFoundError
from claude_force_nb.simulator import LocalServer


@pytest.fixture
def make(server):
    made = []

    def make(**options):
        options.setdefault("api_key", "test-key")
        options.setdefault("base_url", server.url)
        options.setdefault("max_retries", 0)
        orchestrator = AsyncAgentOrchestrator(**options)
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        if orchestrator.cache is not None:
            orchestrator.cache.close()


def messages_requests(server):
    return [r for r in server.log if r.path == "/v1/messages"]


async def test_execute_agent_returns_a_complete_result(make, server):
    result = await make().execute_agent("code-reviewer", "def f(): pass")
    assert result.success and result.error is None
    assert "synthetic" in result.output
    assert result.agent_name == "code-reviewer"
    assert result.model == DEFAULT_MODEL
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.cost > 0
    assert result.request_id.startswith("req_")
    assert result.latency > 0 and not result.cached
    body = messages_requests(server)[0].body
    assert body["system"].startswith("You are a meticulous senior code reviewer")
    assert body["messages"] == [{"role": "user", "content": "def f(): pass"}]


async def test_per_call_overrides_reach_the_request(make, server):
    await make().execute_agent(
        "summarizer",
        "text",
        model="claude-opus-4-6",
        max_tokens=77,
        temperature=0.25,
        stop_sequences=["END"],
        system="Be terse.",
    )
    body = messages_requests(server)[0].body
    assert body["model"] == "claude-opus-4-6"
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.25  # sent through extra_body
    assert body["stop_sequences"] == ["END"]
    assert body["system"] == "Be terse."


async def test_agent_defaults_come_from_its_file(make, server, isolated_env):
    agents = isolated_env["work"] / ".claude" / "agents"
    agents.mkdir(parents=True)
    agents.joinpath("terse.md").write_text(
        "---\nname: terse\nmodel: haiku\nmax_tokens: 50\ntemperature: 0\n---\nBe terse.\n"
    )
    await make().execute_agent("terse", "hi")
    body = messages_requests(server)[0].body
    assert (body["model"], body["max_tokens"], body["temperature"], body["system"]) == (
        "claude-haiku-4-5",
        50,
        0,
        "Be terse.",
    )


async def test_rate_limit_with_retry_after_is_retried_by_the_sdk(make, server):
    server.faults.push("429", retry_after_ms=10)
    result = await make(max_retries=2).execute_agent("explainer", "GIL?")
    assert result.success
    assert [r.status for r in messages_requests(server)] == [429, 200]


async def test_overload_exhausts_the_sdk_retries(make, server):
    for _ in range(3):
        server.faults.push("529", retry_after_ms=1)
    result = await make(max_retries=2).execute_agent("explainer", "GIL?")
    assert not result.success
    assert isinstance(result.error, CallError) and result.error.status == 529
    assert isinstance(result.error.__cause__, anthropic.APIStatusError)
    assert "529" in str(result.error) and "request id req_" in str(result.error)
    assert "try again later" in str(result.error)
    assert len(messages_requests(server)) == 3


async def test_server_error_keeps_the_original_exception(make, server):
    server.faults.push("500")
    result = await make().execute_agent("explainer", "x")
    assert result.status == "failed"
    assert isinstance(result.error.__cause__, anthropic.InternalServerError)
    assert result.errors == [str(result.error)]
    with pytest.raises(CallError):
        result.raise_for_error()


async def test_slow_answer_times_out(make, server):
    server.faults.push("slow", seconds=2)
    result = await make(timeout_seconds=0.2).execute_agent("explainer", "x")
    assert isinstance(result.error, CallTimeoutError)
    assert "timed out" in str(result.error) or "No answer within" in str(result.error)


async def test_dropped_connection_is_a_call_error(make, server):
    server.faults.push("drop")
    result = await make().execute_agent("explainer", "x")
    assert isinstance(result.error, CallError)
    assert isinstance(result.error.__cause__, anthropic.APIConnectionError)
    assert "Could not connect" in str(result.error)


async def test_concurrency_is_bounded_as_the_server_sees_it(make, server, until):
    server.latency = 60  # held until three are in flight at once
    orchestrator = make(max_concurrent=3, enable_cache=False)
    sweep = asyncio.ensure_future(orchestrator.execute_multiple([("explainer", f"task {i}") for i in range(12)]))
    await until(lambda: server.in_flight == 3)
    server.latency = 0
    server.wake()
    assert all(r.success for r in await sweep)
    assert server.max_in_flight == 3


async def test_results_come_back_in_input_order(make, server):
    server.faults.push("slow", seconds=0.3)  # the first call finishes last
    tasks = [("explainer", f"task {i}") for i in range(5)]
    results = await make(enable_cache=False).execute_multiple(tasks)
    assert [r.task for r in results] == [t for _, t in tasks]


async def test_one_failure_keeps_every_other_result(make, server):
    server.faults.push("500")
    results = await make(enable_cache=False, max_concurrent=1).execute_multiple(
        [("explainer", f"task {i}") for i in range(5)]
    )
    assert [r.success for r in results] == [False, True, True, True, True]


async def test_cancelling_the_batch_cancels_calls_in_flight(make, server, until):
    server.latency = 30
    orchestrator = make(enable_cache=False)
    batch = orchestrator.batch([("explainer", f"task {i}") for i in range(4)])
    pending = asyncio.ensure_future(batch.wait())
    await until(lambda: server.in_flight == 4)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(pending, 5)
    assert batch.progress.cancelled == 4
    assert all(r.cancelled for r in batch.results_so_far())


async def test_unknown_agent_fails_before_any_call(make, server):
    orchestrator = make()
    with pytest.raises(AgentNotFoundError, match="Did you mean 'explainer'"):
        await orchestrator.execute_agent("explainr", "x")
    with pytest.raises(AgentNotFoundError):
        await orchestrator.execute_multiple([("explainer", "x"), ("nope", "y")])
    assert messages_requests(server) == []


async def test_streaming_delivers_the_same_text(make, server):
    chunks = []
    result = await make(enable_cache=False).execute_agent("explainer", "x", on_text=chunks.append)
    assert len(chunks) > 1
    assert "".join(chunks) == result.output
    assert messages_requests(server)[0].body.get("stream") is True


async def test_second_identical_call_is_served_from_the_cache(make, server):
    orchestrator = make()
    first = await orchestrator.execute_agent("explainer", "same")
    second = await orchestrator.execute_agent("explainer", "same")
    assert not first.cached and second.cached
    assert second.output == first.output
    assert second.original_latency == pytest.approx(first.completion.latency)
    assert first.cost > 0 and second.cost == 0  # the saving shows in stats() instead
    assert orchestrator.stats().cost_saved == pytest.approx(first.cost)
    assert len(messages_requests(server)) == 1
    assert orchestrator.stats().hits == 1


async def test_replay_miss_is_a_failed_result_naming_the_task(make, server):
    result = await make(cache_mode="replay").execute_agent("explainer", "never asked before")
    assert isinstance(result.error, CacheMissError)
    assert "explainer" in str(result.error) and "never asked" in str(result.error)
    assert messages_requests(server) == []


async def test_calls_accept_per_call_models(make, server):
    results = await make().execute_multiple(
        [Call("explainer", "x", model="claude-haiku-4-5"), ("explainer", "x", {"model": "claude-opus-4-6"})]
    )
    assert [r.model for r in results] == ["claude-haiku-4-5", "claude-opus-4-6"]


def test_recommended_configuration_works_verbatim_on_the_offline_default(monkeypatch, capfd):
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0")

    async def main():
        orchestrator = AsyncAgentOrchestrator(
            max_concurrent=10, timeout_seconds=120, enable_cache=True, cache_ttl_hours=24
        )
        result = await orchestrator.execute_agent("code-reviewer", "def f(): pass")
        results = await orchestrator.execute_multiple([("code-reviewer", "..."), ("python-expert", "...")])
        return orchestrator, result, results

    orchestrator, result, results = asyncio.run(main())
    assert result.success and all(r.success for r in results)
    assert orchestrator.backend.offline
    # The same orchestrator keeps working on a new event loop (a new asyncio.run).
    again = asyncio.run(orchestrator.execute_agent("code-reviewer", "def g(): pass"))
    assert again.success
    asyncio.run(orchestrator.close())


def test_max_concurrent_must_be_positive():
    with pytest.raises(ValueError, match="max_concurrent"):
        AsyncAgentOrchestrator(max_concurrent=0, enable_cache=False)


async def test_offline_answers_live_in_their_own_cache_file(monkeypatch, isolated_env):
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0")
    offline = AsyncAgentOrchestrator()
    assert offline.backend.offline and offline.backend.origin == "local"
    result = await offline.execute_agent("explainer", "x")
    assert result.synthetic
    await offline.close()
    home = isolated_env["nb-home"]
    with sqlite3.connect(home / "offline-cache.sqlite") as db:
        assert db.execute("SELECT origin, synthetic FROM responses").fetchall() == [("local", 1)]
    with sqlite3.connect(home / "cache.sqlite") as db:
        assert db.execute("SELECT count(*) FROM responses").fetchone() == (0,)


async def test_answers_recorded_from_an_endpoint_replay_offline_in_the_default_layout(monkeypatch, isolated_env):
    # Tutorial 04's route: record with a key against the API, replay in CI with none.
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", "0")
    with LocalServer(mark_synthetic=False) as claude:
        async with AsyncAgentOrchestrator(base_url=claude.url, api_key="k") as recording:
            recorded = await recording.execute_agent("explainer", "replay me")
    assert not recorded.synthetic
    async with AsyncAgentOrchestrator(cache_mode="replay") as ci:
        assert ci.backend.offline
        replayed = await ci.execute_agent("explainer", "replay me")
        missing = await ci.execute_agent("explainer", "never recorded")
    assert replayed.cached and replayed.output == recorded.output and not replayed.synthetic
    assert isinstance(missing.error, CacheMissError)
    with sqlite3.connect(isolated_env["nb-home"] / "cache.sqlite") as db:
        assert db.execute("SELECT synthetic FROM responses").fetchall() == [(0,)]


def test_settings_never_show_the_key_or_secret():
    from claude_force_nb._config import Settings

    settings = Settings.from_env({"ANTHROPIC_API_KEY": "sk-ant-SECRET", "CLAUDE_CACHE_SECRET": "hush"})
    assert "sk-ant-SECRET" not in repr(settings) and "hush" not in repr(settings)


async def test_lookup_hits_without_the_loop_and_a_miss_is_counted_once(make, server):
    orchestrator = make()
    call = orchestrator.prepare("explainer", "q")
    assert orchestrator.lookup(call) is None
    assert orchestrator.stats().misses == 1
    live = await orchestrator.send(call)  # sent without looking again
    assert orchestrator.stats().misses == 1 and not live.cached
    hit = orchestrator.lookup(call)
    assert hit.cached and hit.output == live.output and hit.source == "memory"
    assert orchestrator.lookup(orchestrator.prepare("explainer", "q", cache_mode="refresh")) is None
    assert (orchestrator.stats().hits, orchestrator.stats().misses) == (1, 1)


async def test_an_auth_token_alone_talks_to_the_api(server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "gateway-token")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    orchestrator = AsyncAgentOrchestrator(enable_cache=False, max_retries=0)
    assert not orchestrator.backend.offline
    result = await orchestrator.execute_agent("explainer", "x")
    assert result.success
    assert server.log[-1].headers["authorization"] == "<redacted>"
    await orchestrator.close()


async def test_a_miss_resolves_builds_and_keys_its_request_once(make, server, counted):
    orchestrator = make()
    result = await orchestrator.execute_agent("explainer", "count me")
    assert result.success and not result.cached
    assert counted == {"agent": 1, "request": 1, "fingerprint": 1, "lookup": 1}
    results = await orchestrator.execute_multiple([("explainer", f"task {i}") for i in range(3)])
    assert all(r.success for r in results)
    assert counted == {"agent": 4, "request": 4, "fingerprint": 4, "lookup": 4}


async def test_aliases_resolve_and_an_unpriced_model_costs_unknown(make, server):
    orchestrator = make(model="sonnet")
    assert orchestrator.model == "claude-sonnet-4-6"
    result = await orchestrator.execute_agent("explainer", "x", model="claude-opus-4-8")
    assert result.success and result.model == "claude-opus-4-8" and result.cost is None


async def test_a_model_the_api_does_not_serve_fails_with_its_404(make, server):
    with pytest.warns(ClaudeForceWarning, match="not in claude-force-nb's table"):
        result = await make().execute_agent("explainer", "x", model="claude-imaginary-1")
    assert isinstance(result.error, CallError) and result.error.status == 404
    assert "not_found_error" in str(result.error) and "Check the model name" in str(result.error)


async def test_an_unknown_model_raises_as_an_unknown_agent_does_and_nothing_is_sent(make, server):
    with pytest.raises(ModelNotFoundError, match="Unknown model 'gpt-4o'"):
        await make().execute_agent("explainer", "x", model="gpt-4o")
    with pytest.raises(ModelNotFoundError, match="Did you mean 'opus'"):
        await make().execute_agent("explainer", "x", model="opsu")
    assert messages_requests(server) == []


async def test_options_that_cannot_be_sent_are_a_failed_result(make, server):
    result = await make().execute_agent("explainer", "x", max_tokens=-1)
    assert not result.success and "max_tokens must be at least 1" in str(result.error)
    assert messages_requests(server) == []


async def test_a_deprecated_model_is_said_once(make, server):
    orchestrator = make(enable_cache=False)
    # Deprecated, then retired on 2026-11-30: either way the note names the date and the replacement.
    with pytest.warns(ClaudeForceWarning, match=r"claude-sonnet-4-5 .* 2026-11-30.* move to claude-sonnet-4-6"):
        await orchestrator.execute_agent("explainer", "x", model="claude-sonnet-4-5")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClaudeForceWarning)
        again = await orchestrator.execute_agent("explainer", "y", model="claude-sonnet-4-5")
    assert again.success


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout_seconds": float("nan")}, "timeout_seconds must be a positive, finite number"),
        ({"max_concurrent": 0}, "max_concurrent must be at least 1"),
        ({"max_tokens": -5}, "max_tokens must be at least 1"),
        ({"cache_ttl_hours": float("nan")}, "cache_ttl_hours must be a positive number"),
        ({"model": "gpt-4o"}, "Unknown model 'gpt-4o'"),
        ({"cache_maxsize": 0}, "maxsize must be at least 1"),
        ({"cache_max_rows": 2.5}, "max_rows must be a whole number"),
    ],
)
def test_settings_are_checked_when_the_orchestrator_is_made(options, fragment):
    with pytest.raises(ValueError, match=fragment):
        AsyncAgentOrchestrator(**options)


def test_a_bad_model_in_the_environment_is_named_by_its_variable(monkeypatch):
    monkeypatch.setenv("CLAUDE_FORCE_NB_MODEL", "gpt-4o")
    with pytest.raises(ValueError, match=r"Unknown model 'gpt-4o' \(from CLAUDE_FORCE_NB_MODEL\)"):
        AsyncAgentOrchestrator()
    assert AsyncAgentOrchestrator(model="haiku").model == "claude-haiku-4-5"


@pytest.mark.parametrize("value", ["slow", "nan", "-1", "601"])
def test_a_bad_offline_latency_is_named_by_its_variable(monkeypatch, value):
    monkeypatch.setenv("CLAUDE_FORCE_NB_SIMULATOR_LATENCY", value)
    with pytest.raises(ValueError, match=f"CLAUDE_FORCE_NB_SIMULATOR_LATENCY='{value}' must be a number of seconds"):
        Settings.from_env()


def test_numpy_numbers_are_numbers():
    numpy = pytest.importorskip("numpy")
    orchestrator = AsyncAgentOrchestrator(max_concurrent=numpy.int64(4), timeout_seconds=numpy.float32(30))
    assert (orchestrator.max_concurrent, orchestrator.timeout_seconds) == (4, 30.0)
    assert type(orchestrator.max_concurrent) is int


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": float("nan")},
        {"max_tokens": 0},
        {"temperature": float("inf")},
        {"top_k": -3},
        {"top_k": 1.5},
        {"stop_sequences": [""]},
    ],
)
async def test_a_bad_per_call_setting_fails_that_call_only(make, server, options):
    result = await make().execute_agent("explainer", "x", **options)
    assert isinstance(result.error, ValueError) and not result.success
    assert messages_requests(server) == []


async def test_identical_calls_in_flight_together_send_one_request(make, server):
    server.latency = 0.2
    results = await make().execute_multiple([("explainer", "the same question")] * 10)
    assert all(r.success for r in results)
    assert len(messages_requests(server)) == 1
    assert sorted(r.source for r in results) == ["api"] + ["shared"] * 9
    assert len({r.output for r in results}) == 1


async def test_a_synthetic_answer_is_never_served_for_another_endpoint(server, isolated_env):
    # The reproduction: a simulator behind ANTHROPIC_BASE_URL, then a real key with no base URL.
    simulated = AsyncAgentOrchestrator(base_url=server.url, max_retries=0)
    first = await simulated.execute_agent("explainer", "hello sim")
    assert first.synthetic and not first.cached
    await simulated.close()
    live = AsyncAgentOrchestrator(api_key="sk-ant-test")
    call = live.prepare("explainer", "hello sim")
    assert call.origin == "https://api.anthropic.com" and live.lookup(call) is None
    await live.close()
    home = isolated_env["nb-home"]
    with sqlite3.connect(home / "cache.sqlite") as db:  # Claude's file holds no synthetic answer
        assert db.execute("SELECT count(*) FROM responses").fetchone() == (0,)
    with sqlite3.connect(home / "offline-cache.sqlite") as db:
        assert db.execute("SELECT origin, synthetic FROM responses").fetchall() == [(server.url, 1)]
    again = AsyncAgentOrchestrator(base_url=server.url)  # the same endpoint, a new session: served
    hit = await again.execute_agent("explainer", "hello sim")
    assert hit.cached and hit.source == "file" and hit.synthetic and hit.output == first.output
    await again.close()


async def test_replay_serves_a_recording_made_against_another_endpoint(server):
    recorder = AsyncAgentOrchestrator(base_url=server.url, api_key="k", cache_path="recorded.sqlite")
    recorded = await recorder.execute_agent("explainer", "for CI")
    await recorder.close()
    ci = AsyncAgentOrchestrator(cache_path="recorded.sqlite", cache_mode="replay")  # no key: the offline origin
    replayed = await ci.execute_agent("explainer", "for CI")
    assert replayed.cached and replayed.output == recorded.output
    await ci.close()


async def test_a_lone_surrogate_in_a_task_is_a_failed_result_not_an_exception(make, server):
    result = await make().execute_agent("python-expert", "x \ud800")
    assert not result.success and isinstance(result.error, UnicodeEncodeError)
    assert messages_requests(server) == []


async def test_a_cache_path_under_the_home_directory_is_expanded(make, server, isolated_env):
    orchestrator = make(cache_path="~/notebooks/answers.sqlite")
    assert (await orchestrator.execute_agent("explainer", "x")).success
    orchestrator.cache.flush()
    assert (isolated_env["user-home"] / "notebooks" / "answers.sqlite").exists()
    assert not (isolated_env["work"] / "~").exists()


async def test_a_task_over_the_apis_size_limit_is_refused_before_anything_is_sent(make, server):
    result = await make().execute_agent("explainer", "x" * (32 * 1024 * 1024))
    assert isinstance(result.error, CallError) and result.error.status == 413
    assert "bytes, over the Messages API limit of 32 MB (33,554,432 bytes), so nothing was sent" in str(result.error)
    assert messages_requests(server) == []
