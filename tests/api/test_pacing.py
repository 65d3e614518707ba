"""Pacing to the rate limits the API reports: a sweep rides the limit instead of drowning in 429s."""

from __future__ import annotations

import asyncio
import email.utils
import time

import anthropic
import httpx2
import pytest

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._api.bucket import Bucket
from claude_force_nb._api.pacing import Limit, Pace, Pacer
from claude_force_nb.simulator import LocalServer, RateLimits


@pytest.fixture
def server():
    """A server of its own: what a process learns of an endpoint's limits outlives a test."""
    with LocalServer() as own:
        yield own


def messages(server):
    return [record for record in server.log if record.path == "/v1/messages"]


def sweep(count, prefix="item"):
    return [("explainer", f"{prefix} {i}: name one prime") for i in range(count)]


async def run(server, calls, **options):
    options.setdefault("max_concurrent", 50)
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", enable_cache=False, **options) as orchestrator:
        results = await orchestrator.execute_multiple(calls)
        return results, orchestrator.pace()


# The pacer on its own, as the SDK runs it: middleware of an AsyncAnthropic whose transport gives set answers.
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": "name one prime"}]}
ANSWER = {
    "id": "msg_paced",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "2"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 4, "output_tokens": 1},
}
REFUSAL = {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}


def answering(pacer, answer, sent=None):
    """An SDK client paced by ``pacer`` whose every attempt gets ``answer()``: (status, headers)."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        if sent is not None:
            sent.append(request)
        status, headers = answer()
        return httpx2.Response(status, headers=headers, json=ANSWER if status == 200 else REFUSAL)

    # No proxy from the environment: it would take the requests past the transport.
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handle), trust_env=False)
    return anthropic.AsyncAnthropic(api_key="k", http_client=http, max_retries=0, middleware=[pacer])


async def call(pacer, sdk, body=BODY):
    """A call as the backend makes it: admitted first, then sent through the client."""
    async with pacer.admitted(body):
        return await sdk.messages.create(**body)


async def test_a_sweep_rides_the_request_limit_without_a_429_storm(server):
    # 20 requests per "minute" of one second: 60 calls need two seconds of refills past the first 20.
    server.rate_limits = RateLimits(requests=20, minute=1.0)
    results, pace = await run(server, sweep(60))
    assert all(r.success for r in results)
    refused = sum(record.status == 429 for record in messages(server))
    assert refused <= 1  # the first answer is the first the pacer hears of the limit
    assert pace.riding.kind == "requests" and pace.riding.limit == 20
    assert pace.riding.per_second == pytest.approx(20, rel=0.05)
    assert "riding 20 requests per " in pace.describe()


async def test_the_pacer_rides_inside_the_sdk_only_once_an_answer_reports_a_limit(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", enable_cache=False) as orchestrator:
        assert (await orchestrator.execute_agent("explainer", "no limits yet")).success
        # Nothing to pace to: no middleware, so requests take the SDK's fast path; the answer was still read.
        assert orchestrator.backend.client().middleware == ()
        assert orchestrator.pace().limits == () and orchestrator.pace().requests_per_second >= 0
        server.rate_limits = RateLimits(requests=20, minute=1.0)
        assert (await orchestrator.execute_agent("explainer", "a limit now")).success
        assert len(orchestrator.backend.client().middleware) == 1  # engaged: every attempt is paced
        results = await orchestrator.execute_multiple(sweep(40, "engaged"))
        assert all(r.success for r in results)
        assert sum(record.status == 429 for record in messages(server)) == 0
        assert orchestrator.pace().riding.limit == 20


def area(width: float, height: float) -> float:
    """The area of a width by height rectangle."""
    return width * height


async def test_calls_that_waited_for_the_first_answer_go_through_the_pacer_it_engaged(server):
    # A fresh endpoint: the sweep's first call goes alone, and its answer reports the limit. The calls
    # that waited meanwhile, tool loops of two replies each, must then be paced reply by reply.
    server.rate_limits = RateLimits(requests=6, minute=1.0)
    sweep = [("explainer", f"How big is a {i} by 4 room?") for i in range(8)]
    options = {"base_url": server.url, "api_key": "k", "enable_cache": False, "max_retries": 0}
    async with AsyncAgentOrchestrator(**options) as made:
        results = await made.execute_multiple(sweep, tools=[area])
    assert sum(record.status == 429 for record in messages(server)) <= 1
    assert sum(not r.success for r in results) <= 1 and len(messages(server)) >= 15


async def test_a_429_before_any_limit_was_heard_engages_the_pacer(server):
    server.faults.push("429", retry_after_ms=200)
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="k", enable_cache=False, max_retries=0) as made:
        refused = await made.execute_agent("explainer", "refused once")
        assert not refused.success and made.pace().rate_limited == 1
        assert len(made.backend.client().middleware) == 1
        assert (await made.execute_agent("explainer", "then answered")).success


async def test_without_pacing_the_same_sweep_is_refused_again_and_again(server):
    server.rate_limits = RateLimits(requests=20, minute=1.0)
    results, pace = await run(server, sweep(60, "unpaced"), pace=False, max_retries=0)
    assert pace is None
    assert sum(not r.success for r in results) >= 30  # the contrast the pacer exists for


async def test_output_tokens_held_for_max_tokens_come_back_when_answers_end(server):
    # Each call holds 1,000 output tokens of a 3,000 bucket while it runs, but uses far fewer:
    # given back, they let the sweep go on instead of waiting a whole refill per three calls.
    server.rate_limits = RateLimits(output_tokens=3_000, minute=60.0)
    server.latency = 0.05
    results, pace = await run(server, sweep(12, "output"), max_concurrent=3, max_tokens=1_000)
    assert all(r.success for r in results)
    assert sum(record.status == 429 for record in messages(server)) <= 1
    assert pace.riding.kind == "output-tokens"
    # Without the give-back the bucket would be 9,000 tokens in debt; it is nearly full.
    assert pace.riding.remaining > 3_000 - 3 * 1_000


async def test_input_tokens_are_estimated_from_the_prompt_and_learned_from_answers(server):
    server.rate_limits = RateLimits(input_tokens=2_000, minute=1.0)
    task = "A longer prompt that costs a fair number of input tokens to send. " * 6
    results, pace = await run(server, [("explainer", f"{i} {task}") for i in range(40)])
    assert all(r.success for r in results)
    assert sum(record.status == 429 for record in messages(server)) <= 2
    assert pace.riding.kind == "input-tokens"


async def test_a_new_client_starts_from_what_the_process_learned_of_the_endpoint(server):
    server.rate_limits = RateLimits(requests=20, minute=1.0)
    await run(server, sweep(30, "first"))  # leaves the bucket nearly empty
    results, pace = await run(server, sweep(30, "second"))  # a new orchestrator: no probe, and no burst
    assert all(r.success for r in results)
    assert sum(record.status == 429 for record in messages(server)) <= 1
    assert pace.riding.limit == 20


async def test_limits_that_go_away_stop_holding_calls(server):
    server.rate_limits = RateLimits(input_tokens=500, minute=60.0)  # about eight calls a minute
    await run(server, sweep(3, "limited"))
    server.rate_limits = None
    results, pace = await run(server, sweep(20, "free"))  # would take minutes if the old bucket still held
    assert all(r.success for r in results) and pace.limits == ()


async def test_a_429_holds_every_call_until_its_retry_after(clock):
    pacer = Pacer(origin="https://held.example", timer=clock, clock=clock)
    answers = [(429, {"retry-after-ms": "300"})]
    sent = []
    async with answering(pacer, lambda: answers.pop() if answers else (200, {}), sent) as sdk:
        with pytest.raises(anthropic.RateLimitError):
            await call(pacer, sdk)
        assert pacer.pace().paused_for == pytest.approx(0.3) and pacer.pace().rate_limited == 1
        clock.tick(0.29)
        held = asyncio.gather(*(call(pacer, sdk) for _ in range(3)))
        with pytest.raises(TimeoutError):  # the pacer's own 10 ms sleeps end, and its clock still holds them
            await asyncio.wait_for(asyncio.shield(held), 0.05)
        assert len(sent) == 1  # only the refused call has reached the API
        clock.tick(0.01)
        await held
        assert len(sent) == 4


async def test_the_bucket_follows_what_the_api_reports():
    bucket = Bucket(100, 10)  # 100 units, refilled at 10 a second
    await bucket.acquire(30)
    bucket.hold(80)  # the API says more is spent than this client took (another client)
    assert bucket.remaining == pytest.approx(20, abs=1)
    bucket.hold(10)  # an older answer saying less never lowers it
    assert bucket.remaining == pytest.approx(20, abs=1)
    bucket.give_back(50)
    assert bucket.remaining == pytest.approx(70, abs=1)
    bucket.follow(200, 40)
    assert (bucket.max_rate, bucket.time_period) == (200, 5)
    assert bucket.remaining == pytest.approx(170, abs=2)
    assert bucket.has_capacity(160) and not bucket.has_capacity(180)


def test_the_pace_says_which_limit_it_rides():
    pace = Pace(
        12.5,
        (Limit("requests", 1_000, 1_000 / 60, 900), Limit("input-tokens", 80_000, 80_000 / 60, 8_000)),
        rate_limited=2,
    )
    assert pace.riding.kind == "input-tokens"
    assert pace.describe() == "12.5 requests/s, riding 80,000 input tokens per minute (10% left); 2 answered 429"
    assert Pace(0.0).describe() == "0.0 requests/s; no rate limits reported"


async def test_a_limit_whose_refill_has_not_shown_yet_is_reported_as_such(clock):
    # One answer with 1 of 10,000,000 output tokens spent says the limit but not how fast it refills.
    pacer = Pacer(origin="https://unseen-refill.example", clock=clock)
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock() + 60))
    headers = {
        "anthropic-ratelimit-output-tokens-limit": "10000000",
        "anthropic-ratelimit-output-tokens-remaining": "9999999",
        "anthropic-ratelimit-output-tokens-reset": reset,
    }
    async with answering(pacer, lambda: (200, headers)) as sdk:
        await call(pacer, sdk)
    (limit,) = pacer.pace().limits
    assert (limit.kind, limit.per_second, limit.window) == ("output-tokens", 0.0, float("inf"))
    assert "riding 10,000,000 output tokens (refill rate not seen yet)" in pacer.pace().describe()


def _limit_headers(limit, remaining, reset, date=None):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reset)) + f".{int(reset % 1 * 1000):03d}Z"
    headers = {
        "anthropic-ratelimit-requests-limit": str(limit),
        "anthropic-ratelimit-requests-remaining": str(remaining),
        "anthropic-ratelimit-requests-reset": stamp,
    }
    if date is not None:
        headers["date"] = email.utils.formatdate(date, usegmt=True)
    return headers


@pytest.mark.parametrize("ahead", [0.0, 1.0, 3.0, 30.0])
async def test_a_clock_ahead_of_the_apis_never_makes_the_pace_too_fast(ahead, clock):
    # 100 requests refilling in 10 s (10 a second); this kernel's clock is ``ahead`` of the API's.
    pacer = Pacer(origin=f"https://skewed-{ahead}.example", clock=clock)  # what a process learns is kept per endpoint
    spent = 50

    def answer():
        clock.tick(0.01)  # the API writes its answer a little after the send
        server_now = clock() - ahead
        return 200, _limit_headers(100, 100 - spent, server_now + spent / 10, date=server_now)

    async with answering(pacer, answer) as sdk:
        await call(pacer, sdk)
    (limit,) = pacer.pace().limits
    assert 0 <= limit.per_second <= 10.0


async def test_without_a_date_header_a_clock_far_ahead_teaches_nothing_rather_than_nonsense(clock):
    pacer = Pacer(origin="https://no-date.example", clock=clock)
    headers = _limit_headers(100, 50, clock() - 30 + 5)
    async with answering(pacer, lambda: (200, headers)) as sdk:
        await call(pacer, sdk)
    (limit,) = pacer.pace().limits
    assert limit.per_second == 0.0  # not negative: not learned yet
