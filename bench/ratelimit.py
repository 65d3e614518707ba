"""A sweep that rides the organisation's rate limits, against the bare SDK at the same concurrency.

Run: python bench/ratelimit.py [--calls 800] [--concurrency 50] [--ideal 30]

The local Messages API server enforces requests and input tokens per minute,
with a minute scaled to ten seconds, sized so that the limit-bound ideal (the
time the buckets need to refill for every call past their first fill) is
about ``--ideal`` seconds. Each call waits 0.2 s for its answer, so the
concurrency alone would allow far more than the limits do.

- ``execute_multiple``: the orchestrator, which paces itself from the
  ``anthropic-ratelimit-*`` headers and from 429s (cache off).
- baseline: ``asyncio.gather`` over ``AsyncAnthropic.messages.create`` behind
  a semaphore of the same size, with the SDK's default two retries.

Both run against fresh buckets, in the same process as the server (the
limits, not the CPU, bound the sweep). Printed: wall time and its ratio to
the ideal, requests answered 429, and failed calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import anthropic

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb.simulator import LocalServer, RateLimits
from claude_force_nb.simulator._answers import count_input_tokens

MODEL = "claude-sonnet-4-6"
MINUTE = 10.0
LATENCY = 0.2
AGENT = "explainer"


def tasks(count: int) -> list[str]:
    return [
        f"Item {i}: explain, in two sentences, why the sky looks blue at noon and red at dusk." for i in range(count)
    ]


def limits_for(server: LocalServer, calls: int, ideal: float) -> tuple[RateLimits, float]:
    """Limits under which the calls need about ``ideal`` seconds, input tokens binding; and that ideal exactly."""
    orchestrator = AsyncAgentOrchestrator(base_url=server.url, api_key="bench", enable_cache=False)
    request = orchestrator.prepare(AGENT, tasks(1)[0]).request
    per_call = count_input_tokens(request.to_kwargs())
    total = per_call * calls
    # A bucket of B refilling B per minute passes total tokens in (total - B) / (B / minute) seconds.
    bucket = round(total / (1 + ideal / MINUTE))
    requests = 2 * round(calls / (1 + ideal / MINUTE))  # twice as much room: tokens are what binds
    limits = RateLimits(requests=requests, input_tokens=bucket, output_tokens=10_000_000, minute=MINUTE)
    exact = max((total - bucket) / (bucket / MINUTE), (calls - requests) / (requests / MINUTE), 0.0)
    return limits, exact


async def ours(server: LocalServer, calls: int, concurrency: int) -> tuple[float, int]:
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="bench", enable_cache=False, max_concurrent=concurrency, timeout_seconds=600
    ) as orchestrator:
        start = time.perf_counter()
        results = await orchestrator.execute_multiple([(AGENT, task) for task in tasks(calls)])
        elapsed = time.perf_counter() - start
        print(f"  pace at the end: {orchestrator.pace().describe()}")
    return elapsed, sum(not r.success for r in results)


async def bare(server: LocalServer, calls: int, concurrency: int) -> tuple[float, int]:
    orchestrator = AsyncAgentOrchestrator(base_url=server.url, api_key="bench", enable_cache=False)
    requests = [orchestrator.prepare(AGENT, task).request.to_kwargs() for task in tasks(calls)]
    semaphore = asyncio.Semaphore(concurrency)
    async with anthropic.AsyncAnthropic(
        api_key="bench", base_url=server.url, http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False)
    ) as client:

        async def one(kwargs: dict) -> bool:
            async with semaphore:
                try:
                    await client.messages.create(**kwargs)
                except anthropic.APIError:
                    return False
                return True

        start = time.perf_counter()
        done = await asyncio.gather(*(one(kwargs) for kwargs in requests))
        return time.perf_counter() - start, done.count(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--ideal", type=float, default=30.0)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = ",".join(filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1")))
    with LocalServer(latency=LATENCY, log_limit=10 * args.calls) as server:
        limits, ideal = limits_for(server, args.calls, args.ideal)
        print(
            f"{args.calls} calls, -c {args.concurrency}, {LATENCY:g} s per answer; limits per {MINUTE:g} s: "
            f"{limits.requests:,} requests, {limits.input_tokens:,} input tokens; ideal {ideal:.1f} s\n"
        )
        rows = []
        for name, run in (("`execute_multiple` (paced)", ours), ("bare SDK, gather + semaphore", bare)):
            server.reset()
            server.rate_limits = limits  # full buckets for each side
            print(name)
            elapsed, failed = asyncio.run(run(server, args.calls, args.concurrency))
            sent = [r for r in server.log if r.path == "/v1/messages"]
            refused = sum(r.status == 429 for r in sent)
            rows.append((name, elapsed, refused, len(sent), failed))
    print("\n| run | wall | × ideal | answered 429 | failed calls |")
    print("|---|---:|---:|---:|---:|")
    for name, elapsed, refused, sent, failed in rows:
        print(
            f"| {name} | {elapsed:.1f} s | {elapsed / ideal:.2f} | {refused} of {sent} ({refused / sent:.1%}) "
            f"| {failed} of {args.calls} |"
        )
    paced = rows[0]
    print(
        f"\n- wall ≤ 1.10× ideal: {'met' if paced[1] <= 1.10 * ideal else 'NOT met'}"
        f"\n- ≤ 1 % answered 429: {'met' if paced[2] <= 0.01 * paced[3] else 'NOT met'}"
        f"\n- no failed calls: {'met' if paced[4] == 0 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
