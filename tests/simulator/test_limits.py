"""The local server's rate limits, seen through the real SDK: token buckets, headers, 429s."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import anthropic
import pytest

from claude_force_nb.simulator import LocalServer, RateLimits
from claude_force_nb.simulator.__main__ import main

MODEL = "claude-sonnet-4-6"
PREFIX = "anthropic-ratelimit-"


def kwargs(max_tokens=100, task="Count the primes below fifty."):
    return {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": task}]}


async def create(client, **options):
    raw = await client.messages.with_raw_response.create(**kwargs(**options))
    return await raw.parse(), raw.headers


def field(headers, kind, name):
    return headers[f"{PREFIX}{kind}-{name}"]


async def test_every_answer_says_each_limit_what_is_left_and_when_it_refills(client, server):
    server.rate_limits = RateLimits(requests=50, input_tokens=10_000, output_tokens=2_000)
    before = time.time()
    message, headers = await create(client, max_tokens=500)
    for kind, limit in (("requests", 50), ("input-tokens", 10_000), ("output-tokens", 2_000)):
        assert int(field(headers, kind, "limit")) == limit
        reset = datetime.fromisoformat(field(headers, kind, "reset").replace("Z", "+00:00")).timestamp()
        assert before - 1 <= reset <= before + 61
    assert int(field(headers, "requests", "remaining")) == 49
    assert int(field(headers, "input-tokens", "remaining")) == 10_000 - message.usage.input_tokens
    # max_tokens is held while the answer is made; what it did not use comes back at the end.
    assert int(field(headers, "output-tokens", "remaining")) == 2_000 - message.usage.output_tokens
    # The "tokens" headers describe the token limit nearest to running out: here, output.
    assert field(headers, "tokens", "limit") == "2000"


async def test_a_spent_limit_is_a_429_with_the_apis_body_and_retry_after(server):
    server.rate_limits = RateLimits(requests=2, minute=60)
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=server.url, max_retries=0, _strict_response_validation=True
    ) as client:
        await create(client)
        await create(client)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await create(client)
    error = caught.value
    assert error.body["error"]["type"] == "rate_limit_error"
    assert "rate limit of 2 requests per minute" in error.body["error"]["message"]
    # One request refills in 30 s: retry-after in whole seconds, and in milliseconds for the SDK.
    assert int(error.response.headers["retry-after"]) == 30
    assert 29_000 <= int(error.response.headers["retry-after-ms"]) <= 30_000
    assert error.response.headers[f"{PREFIX}requests-remaining"] == "0"


async def test_the_sdk_waits_out_a_scaled_minute_and_gets_its_answer(client, server):
    server.rate_limits = RateLimits(requests=2, minute=0.5)  # one request back every 0.25 s
    for _ in range(4):
        message, _ = await create(client)
        assert message.content[0].text
    statuses = [record.status for record in server.log]
    assert statuses.count(200) == 4 and 429 in statuses


async def test_a_request_is_held_to_its_max_tokens_until_it_ends(server, client, until):
    server.rate_limits = RateLimits(output_tokens=1_000)
    server.latency = 60  # the first request is still being answered when the second arrives
    async with anthropic.AsyncAnthropic(api_key="k", base_url=server.url, max_retries=0) as strict:
        first = asyncio.ensure_future(strict.messages.create(**kwargs(max_tokens=800)))
        await until(lambda: server.in_flight == 1)
        with pytest.raises(anthropic.RateLimitError, match="1,000 output tokens per minute"):
            await strict.messages.create(**kwargs(max_tokens=800))
        server.latency = 0
        server.wake()
        await first


def test_limits_are_checked_when_set():
    with pytest.raises(ValueError, match="requests must be at least 1"):
        RateLimits(requests=0)
    with pytest.raises(ValueError, match="minute must be a positive, finite number"):
        RateLimits(requests=5, minute=float("nan"))
    assert LocalServer(rate_limits=RateLimits()).rate_limits is None  # no limit at all is no limiter


def test_the_command_line_refuses_a_bad_limit(capsys):
    with pytest.raises(SystemExit):
        main(["--port", "0", "--rpm", "-3"])
    assert "requests must be at least 1, got -3" in capsys.readouterr().err
