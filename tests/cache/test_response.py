import asyncio
import contextlib
import dataclasses
import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
import warnings
import weakref

import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._cache import ResponseCache
from claude_force_nb._cache.stats import CacheStats, StatsCounter
from claude_force_nb._call import PreparedCall
from claude_force_nb._config import Settings
from claude_force_nb._errors import CacheError, CacheIntegrityWarning, CacheMissError, ClaudeForceWarning
from claude_force_nb._pipeline import Pipeline
from claude_force_nb._pricing import Usage
from claude_force_nb._request import Completion, Request

SECRET = b"cache-test-secret"
MODEL = "claude-sonnet-4-6"


class FakeAPI:
    """A ``call`` factory: answers in order, takes ``latency`` fake seconds, records every call."""

    def __init__(self, clock, latency=2.0):
        self.clock = clock
        self.latency = latency
        self.calls = 0
        self.fail_with = None
        self.gate = None  # an asyncio.Event that holds calls until set

    def __call__(self, text="the answer", input_tokens=100, output_tokens=50):
        async def call():
            self.calls += 1
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            self.clock.tick(self.latency)
            if self.fail_with is not None:
                raise self.fail_with
            message = {
                "id": f"msg_{self.calls}",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": f"{text} #{self.calls}"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }
            return Completion(message, self.latency, f"req_{self.calls}")

        return call


class FakeSender:
    """Sends through a FakeAPI call, handing the answer to the pipeline's keep step as a sender does."""

    def __init__(self, make, keep):
        self.make = make
        self.keep = keep

    def admit(self, slot):
        return contextlib.nullcontext()

    async def send(self, call, *, on_text=None):
        return self.keep(call, await self.make())


_pipelines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def fetch(cache, req, make, *, mode=None, agent=""):
    """``req`` answered as the pipeline answers a call over ``cache``: (completion, source), or its error raised."""
    pipeline = _pipelines.setdefault(cache, Pipeline(cache=cache, cost_of=price))
    mode = mode or cache.mode
    key = None if mode == "no-cache" else cache.key(req)
    call = PreparedCall(agent, req.task, req, key, mode, 60.0)
    result = await pipeline.answer(call, sender=FakeSender(make, pipeline.keep))
    if not result.success:
        raise result.error
    return result.completion, result.source


def lookup(cache, req):
    """The answer ``cache`` holds for ``req``, counting a hit or a miss; None on a miss."""
    hit = cache.lookup(cache.key(req))
    return hit.completion if hit is not None else None


def request(task="Explain closures in Python.", **params):
    return Request.for_task(task, model=MODEL, max_tokens=256, **params)


def price(model, usage):
    return usage.input * 0.01 + usage.output * 0.1


@pytest.fixture
def api(clock):
    return FakeAPI(clock)


@pytest.fixture
def make_cache(tmp_path, clock):
    made = []

    def make(path=None, **kwargs):
        kwargs.setdefault("settings", Settings(home=tmp_path / "home"))
        kwargs.setdefault("secrets", [SECRET])
        kwargs.setdefault("timer", clock)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("price", price)
        if kwargs.get("persist", True) and path is None:
            path = tmp_path / "cache.sqlite"
        cache = ResponseCache(path, **kwargs)
        _pipelines[cache] = Pipeline(cache=cache, cost_of=price, timer=clock)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


# -- tiers ---------------------------------------------------------------------------------------------


async def test_miss_then_memory_hit(make_cache, api):
    cache = make_cache()
    first, source = await fetch(cache, request(), api(), agent="explainer")
    assert source == "api" and first.text == "the answer #1"
    again, source = await fetch(cache, request(), api())
    assert source == "memory" and again is first
    assert api.calls == 1
    assert lookup(cache, request()) is first


async def record(make_cache, api, *requests, **kwargs):
    """Answers written by another kernel, committed to the file."""
    other = make_cache(**kwargs)
    for req in requests:
        await fetch(other, req, api())
    other.close()


async def test_file_hit_after_restart_is_promoted(make_cache, api):
    await record(make_cache, api, request())
    cache = make_cache()  # a new kernel, same file
    completion, source = await fetch(cache, request(), api())
    assert source == "file" and completion.text == "the answer #1" and completion.request_id == "req_1"
    assert (await fetch(cache, request(), api()))[1] == "memory"
    stats = cache.stats()
    assert (stats.file_hits, stats.memory_hits, stats.calls) == (1, 1, 0)


def test_lookup_counts_misses(make_cache):
    cache = make_cache()
    assert lookup(cache, request()) is None
    assert cache.stats().misses == 1


def test_default_path_is_in_the_home_directory(tmp_path):
    cache = ResponseCache(settings=Settings(home=tmp_path / "nb-home"))
    try:
        assert cache.path == tmp_path / "nb-home" / "cache.sqlite"
        assert cache.info().secret_source == str(tmp_path / "nb-home" / "secret")
    finally:
        cache.close()


async def test_memory_only(make_cache, tmp_path, api):
    cache = make_cache(persist=False)
    await fetch(cache, request(), api())
    assert (await fetch(cache, request(), api()))[1] == "memory"
    assert cache.path is None and cache.info().secret_source is None
    assert not list(tmp_path.glob("**/*.sqlite")) and not list(tmp_path.glob("**/secret"))


def test_key_is_the_fingerprint(make_cache):
    cache = make_cache(persist=False)
    assert cache.key(request()) == cache.key(request()) != cache.key(request("other"))


# -- expiry and eviction -------------------------------------------------------------------------------


async def test_answers_expire_in_both_tiers(make_cache, api, clock):
    cache = make_cache(ttl_seconds=60)
    await fetch(cache, request(), api())
    clock.tick(30)
    assert (await fetch(cache, request(), api()))[1] == "memory"
    clock.tick(30)
    assert (await fetch(cache, request(), api()))[1] == "api"
    assert api.calls == 2


async def test_promoted_answer_keeps_its_signed_expiry(make_cache, api, clock):
    await record(make_cache, api, request(), ttl_seconds=60)
    clock.tick(50)
    cache = make_cache(ttl_seconds=60)
    assert (await fetch(cache, request(), api()))[1] == "file"
    clock.tick(11)  # 61 s after it was recorded, though only 11 s after promotion
    assert lookup(cache, request()) is None


async def test_no_ttl_never_expires(make_cache, api, clock):
    cache = make_cache(ttl_seconds=None)
    await fetch(cache, request(), api())
    cache.flush()
    clock.tick(10 * 365 * 86400)
    assert (await fetch(cache, request(), api()))[1] == "memory"
    assert (await fetch(make_cache(ttl_seconds=None), request(), api()))[1] == "file"


async def test_replay_serves_a_recording_however_old_and_keeps_it(make_cache, api, clock):
    await record(make_cache, api, request(), ttl_seconds=60)
    clock.tick(365 * 86400)
    replay = make_cache(ttl_seconds=60, mode="replay")
    for _ in range(2):
        completion, source = await fetch(replay, request(), api())
        assert source == "file" and completion.text == "the answer #1"
    assert replay.info().entries == 1  # the committed file is left as it was
    assert api.calls == 1
    # Outside replay the same row has expired.
    completion, source = await fetch(make_cache(ttl_seconds=60), request(), api())
    assert (source, completion.text) == ("api", "the answer #2")
    assert api.calls == 2


async def test_size_evictions_are_counted_and_fall_back_to_the_file(make_cache, api):
    cache = make_cache(maxsize=2)
    for task in ("a", "b", "c"):
        await fetch(cache, request(task), api())
    cache.flush()
    assert cache.stats().evictions == 1
    assert (await fetch(cache, request("a"), api()))[1] == "file"  # least recently used went
    assert (await fetch(cache, request("c"), api()))[1] == "memory"


async def test_expiry_is_not_an_eviction(make_cache, api, clock):
    cache = make_cache(maxsize=2, ttl_seconds=10)
    await fetch(cache, request("a"), api())
    clock.tick(11)
    await fetch(cache, request("b"), api())
    await fetch(cache, request("c"), api())
    assert cache.stats().evictions == 0


# -- single-flight -------------------------------------------------------------------------------------


async def test_identical_requests_in_flight_share_one_call(make_cache, api):
    cache = make_cache()
    api.gate = asyncio.Event()
    tasks = [asyncio.create_task(fetch(cache, request(), api())) for _ in range(10)]
    await asyncio.sleep(0)
    api.gate.set()
    results = await asyncio.gather(*tasks)
    assert api.calls == 1
    assert sorted(source for _, source in results) == ["api"] + ["shared"] * 9
    assert len({id(completion) for completion, _ in results}) == 1
    stats = cache.stats()
    assert (stats.calls, stats.shared, stats.misses) == (1, 9, 10)
    assert stats.tokens_saved == 9 * 150


async def test_an_answer_that_cannot_be_filed_still_reaches_every_waiter(make_cache, api, tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    cache = make_cache(synthetic_path=tmp_path / "not-a-directory" / "offline.sqlite")
    answer = api()

    async def synthetic():
        return dataclasses.replace(await answer(), synthetic=True)

    api.gate = asyncio.Event()
    tasks = [asyncio.create_task(fetch(cache, request(), synthetic)) for _ in range(5)]
    await asyncio.sleep(0)
    api.gate.set()
    with pytest.warns(ClaudeForceWarning, match="Could not cache an answer"):
        results = await asyncio.wait_for(asyncio.gather(*tasks), 30)  # a hang guard
    assert [source for _, source in results].count("shared") == 4
    assert lookup(cache, request()) is not None  # kept in memory all the same


async def test_different_requests_are_not_shared(make_cache, api):
    cache = make_cache()
    await asyncio.gather(fetch(cache, request("a"), api()), fetch(cache, request("b"), api()))
    assert api.calls == 2


async def test_a_failed_call_fails_every_waiter_and_caches_nothing(make_cache, api):
    cache = make_cache()
    api.gate = asyncio.Event()
    api.fail_with = error = RuntimeError("overloaded")
    tasks = [asyncio.create_task(fetch(cache, request(), api())) for _ in range(5)]
    await asyncio.sleep(0)
    api.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(result is error for result in results)
    assert api.calls == 1
    assert lookup(cache, request()) is None
    assert cache.info().entries == 0
    api.fail_with = None
    assert (await fetch(cache, request(), api()))[1] == "api"


async def test_a_failed_call_alone_is_not_logged_as_unretrieved(make_cache, api, caplog):
    cache = make_cache()
    api.fail_with = ValueError("bad request")
    with pytest.raises(ValueError, match="bad request"):
        await fetch(cache, request(), api())
    await asyncio.sleep(0)
    import gc

    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_waiters_take_over_when_the_caller_is_cancelled(make_cache, api):
    cache = make_cache()
    api.gate = asyncio.Event()
    leader = asyncio.create_task(fetch(cache, request(), api()))
    await asyncio.sleep(0)
    follower = asyncio.create_task(fetch(cache, request(), api()))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    api.gate.set()
    _completion, source = await follower
    assert source == "api" and api.calls == 2
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_cancelled_waiter_does_not_cancel_the_call(make_cache, api):
    cache = make_cache()
    api.gate = asyncio.Event()
    leader = asyncio.create_task(fetch(cache, request(), api()))
    await asyncio.sleep(0)
    follower = asyncio.create_task(fetch(cache, request(), api()))
    await asyncio.sleep(0)
    follower.cancel()
    api.gate.set()
    assert (await leader)[1] == "api"
    with pytest.raises(asyncio.CancelledError):
        await follower


# -- modes ---------------------------------------------------------------------------------------------


async def test_refresh_calls_again_and_overwrites(make_cache, api):
    cache = make_cache()
    await fetch(cache, request(), api())
    fresh, source = await fetch(cache, request(), api(), mode="refresh")
    assert source == "api" and fresh.text == "the answer #2"
    assert (await fetch(cache, request(), api()))[0].text == "the answer #2"
    cache.flush()
    assert (await fetch(make_cache(), request(), api()))[0].text == "the answer #2"


async def test_no_cache_neither_reads_nor_writes_nor_shares(make_cache, api):
    cache = make_cache()
    await fetch(cache, request(), api())
    results = await asyncio.gather(*(fetch(cache, request("fresh"), api(), mode="no-cache") for _ in range(3)))
    assert [source for _, source in results] == ["api"] * 3
    assert (await fetch(cache, request(), api(), mode="no-cache"))[1] == "api"
    assert api.calls == 5
    assert lookup(cache, request("fresh")) is None


async def test_replay_serves_recorded_answers(make_cache, api):
    await record(make_cache, api, request())
    cache = make_cache(mode="replay")
    _completion, source = await fetch(cache, request(), api())
    assert source == "file" and api.calls == 1


async def test_replay_miss_names_the_agent_task_and_fix(make_cache, api):
    cache = make_cache(mode="replay")
    with pytest.raises(CacheMissError) as caught:
        await fetch(cache, request("Summarise the quarterly report for the board " * 3), api(), agent="summarizer")
    message = str(caught.value)
    assert "'summarizer'" in message and "Summarise the quarterly report" in message
    assert "without replay" in message
    assert api.calls == 0 and cache.stats().misses == 1


async def test_replay_miss_blames_the_secret_when_it_changed(make_cache, api, tmp_path):
    await record(make_cache, api, request())
    cache = make_cache(secrets=[b"ci-has-another-secret"], mode="replay")
    with pytest.warns(CacheIntegrityWarning), pytest.raises(CacheMissError, match="CLAUDE_CACHE_SECRET"):
        await fetch(cache, request(), api(), agent="explainer")
    assert sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT count(*) FROM responses").fetchone()[0] == 1


async def test_failed_calls_are_never_cached(make_cache, api):
    cache = make_cache()
    api.fail_with = TimeoutError()
    with pytest.raises(TimeoutError):
        await fetch(cache, request(), api())
    assert cache.info().entries == 0 and cache.info().memory_entries == 0


def test_mode_default_comes_from_settings_and_is_checked(make_cache):
    assert make_cache(persist=False, settings=Settings(cache_mode="replay")).mode == "replay"
    assert make_cache(persist=False, mode="refresh", settings=Settings(cache_mode="replay")).mode == "refresh"
    with pytest.raises(ValueError, match="normal, refresh, no-cache, replay"):
        make_cache(persist=False, mode="sometimes")


async def test_unknown_per_call_mode_is_refused(make_cache):
    orchestrator = AsyncAgentOrchestrator(cache=make_cache(persist=False), api_key="k")
    with pytest.raises(ValueError, match="Unknown cache mode"):
        orchestrator.prepare("explainer", "x", cache_mode="later")


# -- integrity through the cache -----------------------------------------------------------------------


async def test_tampered_row_is_a_counted_miss(make_cache, api, tmp_path):
    writer = make_cache()
    await fetch(writer, request("a"), api())
    await fetch(writer, request("b"), api())
    writer.close()
    sqlite3.connect(tmp_path / "cache.sqlite", isolation_level=None).execute(
        "UPDATE responses SET response = replace(response, 'the answer', 'a forged answer') WHERE key = ?",
        (writer.key(request("a")),),
    )
    cache = make_cache()
    with pytest.warns(CacheIntegrityWarning, match="A cached answer .* failed its signature check"):
        completion, source = await fetch(cache, request("a"), api())
    assert source == "api" and "forged" not in completion.text
    assert cache.stats().tampered == 1
    assert (await fetch(cache, request("b"), api()))[1] == "file"


async def test_verify_clear_prune_and_info(make_cache, api, clock, tmp_path):
    cache = make_cache(ttl_seconds=100)
    await fetch(cache, request("a"), api())
    clock.tick(60)
    await fetch(cache, request("b"), api())
    info = cache.info()
    assert info.path == tmp_path / "cache.sqlite" and info.size_bytes > 0
    assert (info.entries, info.memory_entries, info.secret_source) == (2, 2, "argument")
    assert SECRET.decode() not in repr(info)
    report = cache.verify()
    assert (report.total, report.ok, report.bad) == (2, 2, ())
    clock.tick(50)
    assert cache.prune() == 1
    assert cache.info().entries == 1
    assert cache.clear() == 1
    assert cache.info().entries == 0 and lookup(cache, request("b")) is None


# -- statistics ----------------------------------------------------------------------------------------


async def test_stats_add_up(make_cache, api, clock):
    cache = make_cache()
    await fetch(cache, request("a"), api())  # call: 2 s
    await fetch(cache, request("a"), api())  # memory hit
    await record(make_cache, api, request("b"))  # another kernel records b
    await fetch(cache, request("b"), api())  # file hit
    assert lookup(cache, request("c")) is None  # miss, no call
    stats = cache.stats()
    assert (stats.memory_hits, stats.file_hits, stats.hits, stats.misses, stats.calls) == (1, 1, 2, 2, 1)
    assert stats.hit_rate == 0.5
    assert stats.time_saved == 4.0 and stats.call_time == 2.0
    assert stats.tokens_saved == 300
    assert stats.cost_saved == pytest.approx(2 * price(MODEL, Usage(100, 50)))
    # Hits took no fake time: (4 s saved + 2 s calling) / (0 s serving + 2 s calling).
    assert stats.hit_time == 0.0 and stats.speedup == 3.0
    cache.reset_stats()
    assert cache.stats() == CacheStats()


def test_speedup_is_time_it_would_have_taken_over_time_it_took():
    counter = StatsCounter()
    counter.called(2.0)
    counter.memory_hits = 3
    for _ in range(3):
        counter.hit(latency=2.0, tokens=10, cost=0.5, elapsed=0.001)
    stats = counter.snapshot()
    assert stats.speedup == pytest.approx((6.0 + 2.0) / (0.003 + 2.0))
    assert stats.time_saved == 6.0 and stats.tokens_saved == 30 and stats.cost_saved == 1.5
    assert StatsCounter().snapshot().speedup == 1.0
    only_hits = StatsCounter()
    only_hits.hit(latency=1.0, tokens=0, cost=0.0, elapsed=0.0)
    assert only_hits.snapshot().speedup == math.inf


async def test_hits_of_a_model_without_a_price_are_counted_not_priced(make_cache, api):
    cache = make_cache(price=lambda model, usage: None)
    await fetch(cache, request("a"), api())
    await fetch(cache, request("a"), api())
    stats = cache.stats()
    assert (stats.hits, stats.unpriced, stats.cost_saved, stats.tokens_saved) == (1, 1, 0.0, 150)


def test_stats_are_a_frozen_snapshot(make_cache):
    cache = make_cache(persist=False)
    before = cache.stats()
    lookup(cache, request())
    assert before.misses == 0 and cache.stats().misses == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.misses = 5


def test_price_gets_the_answering_model_and_tokens(make_cache):
    seen = []
    cache = make_cache(persist=False, price=lambda *args: seen.append(args) or 1.0)
    usage = {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 90, "service_tier": "batch"}
    message = {"model": "claude-haiku-4-5", "content": [], "usage": usage}
    cache.store(request(), Completion(message, 1.0))
    assert seen == [("claude-haiku-4-5", Usage(7, 3, cache_read=90, batch=True))]


# -- sharing between processes -------------------------------------------------------------------------


async def test_another_process_reads_what_this_one_wrote(make_cache, api, tmp_path, clock):
    cache = make_cache()
    await fetch(cache, request(), api(), agent="explainer")
    cache.flush()
    code = textwrap.dedent(f"""
        import sys
        from claude_force_nb._cache import ResponseCache
        from claude_force_nb._config import Settings
        from claude_force_nb._request import Request
        cache = ResponseCache(sys.argv[1], secrets=[{SECRET!r}], settings=Settings(), mode="replay",
                              clock=lambda: {clock.now!r})
        asked = Request.for_task({request().task!r}, model={MODEL!r}, max_tokens=256)
        print(cache.lookup(cache.key(asked)).completion.text, cache.stats().file_hits)
        cache.close()
    """)
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code, str(tmp_path / "cache.sqlite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["the", "answer", "#1", "1"]


def test_close_is_idempotent_and_memory_keeps_working(make_cache):
    cache = make_cache()
    cache.store(request(), Completion({"content": []}, 1.0))
    cache.close()
    cache.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lookup(cache, request()) is not None


@pytest.mark.parametrize("action", ["info", "verify", "prune", "clear"])
@pytest.mark.parametrize("persist", [True, False])
def test_managing_a_closed_cache_is_a_cache_error(make_cache, action, persist):
    cache = make_cache(persist=persist)
    cache.store(request(), Completion({"content": []}, 1.0))  # the writer thread has started
    cache.close()
    with pytest.raises(CacheError, match="The response cache is closed; create a new ResponseCache"):
        getattr(cache, action)()


def test_two_threads_with_their_own_loops_share_one_cache(make_cache, api):
    # The kernel's loop and a background sweep's worker loop use one cache at once.
    cache = make_cache()
    errors = []

    def sweep():
        async def main():
            for i in range(200):
                await fetch(cache, request(f"task {i % 50}"), api())

        try:
            asyncio.run(main())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = cache.stats()
    assert stats.hits + stats.misses == 400
    assert 50 <= stats.calls <= 100  # each task asked once per thread at most; never lost, never doubled within one
    cache.flush()
    assert cache.info().entries == 50


def test_an_answer_evicted_from_memory_before_its_commit_is_still_served(make_cache, tmp_path):
    # A burst larger than the memory tier, while another kernel holds the write lock: nothing is in the
    # file yet and most answers have left memory, yet none of them is asked for again.
    cache = make_cache(maxsize=2)
    lookup(cache, request("warm-up"))  # opens the file
    blocker = sqlite3.connect(tmp_path / "cache.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for i in range(10):
            message = {"model": MODEL, "content": [{"type": "text", "text": f"answer {i}"}], "usage": {}}
            cache.store(request(f"task {i}"), Completion(message, 1.0))
        found = [lookup(cache, request(f"task {i}")) for i in range(10)]
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert [c.text if c else None for c in found] == [f"answer {i}" for i in range(10)]
    cache.flush()
    assert all(lookup(cache, request(f"task {i}")) for i in range(10))


def test_a_rebuilt_file_gets_back_the_answers_this_session_served(make_cache, tmp_path):
    path = tmp_path / "cache.sqlite"
    answers = {f"task {i}": Completion({"content": [{"type": "text", "text": "x" * 1500}]}, 1.0) for i in range(300)}
    first = make_cache(path)
    for task, completion in answers.items():
        first.store(request(task), completion)
    first.close()
    second = make_cache(path)
    assert all(lookup(second, request(task)) is not None for task in answers)  # all served, from the file
    size = path.stat().st_size
    with open(path, "r+b") as f:  # then a page of the file is lost
        f.seek((size // 4096 // 2) * 4096)
        f.write(b"\0" * 4096)
    with pytest.warns(CacheIntegrityWarning, match="was damaged"):
        second.verify()
    second.close()
    third = make_cache(path)
    assert all(lookup(third, request(task)) is not None for task in answers)
    assert third.stats().file_hits == len(answers)
