"""Orchestrator overhead and concurrent throughput against the bare SDK.

Run: python bench/concurrency.py [--calls 300] [--repeats 5]

The local Messages API server runs in separate processes (one with no
latency, one with 200 ms), so client and server do not share a GIL.
Prints medians and ratios against baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import anthropic

from claude_force_nb import AsyncAgentOrchestrator

MODEL = "claude-sonnet-4-6"
TASK = "Review: def f(x): return x + 1"
SYSTEM = "You are a meticulous code reviewer."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_force_nb.simulator", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/", timeout=0.2)
        except urllib.error.HTTPError:
            return proc, url  # a 404 means it is listening
        except OSError:
            time.sleep(0.05)
        else:
            return proc, url
    proc.kill()
    raise RuntimeError("the local server did not start")


def bare_client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="bench", base_url=url, http_client=anthropic.DefaultAsyncHttpxClient(trust_env=False)
    )


def orchestrator(url: str, concurrency: int) -> AsyncAgentOrchestrator:
    return AsyncAgentOrchestrator(
        max_concurrent=concurrency, enable_cache=False, api_key="bench", base_url=url, model=MODEL
    )


async def bare_call(client: anthropic.AsyncAnthropic, i: int) -> None:
    await client.messages.create(
        model=MODEL, max_tokens=256, system=SYSTEM, messages=[{"role": "user", "content": f"{TASK} #{i}"}]
    )


async def alternate(first, second, repeats: int) -> None:
    """Run both ``repeats`` times, swapping which goes first, so order effects cancel out."""
    for i in range(repeats):
        for run in (first, second) if i % 2 == 0 else (second, first):
            await run()


async def overhead(url: str, calls: int, repeats: int) -> tuple[float, float]:
    """Median per-call seconds, sequentially: (bare SDK, execute_agent)."""
    client = bare_client(url)
    orch = orchestrator(url, 1)
    bare, ours = [], []
    for i in range(20):  # warm both connection pools
        await bare_call(client, i)
        await orch.execute_agent("code-reviewer", f"{TASK} #{i}", system=SYSTEM, max_tokens=256)

    async def run_bare() -> None:
        start = time.perf_counter()
        for i in range(calls):
            await bare_call(client, i)
        bare.append((time.perf_counter() - start) / calls)

    async def run_ours() -> None:
        start = time.perf_counter()
        for i in range(calls):
            result = await orch.execute_agent("code-reviewer", f"{TASK} #{i}", system=SYSTEM, max_tokens=256)
            assert result.success, result.error
        ours.append((time.perf_counter() - start) / calls)

    await alternate(run_bare, run_ours, repeats)
    await client.close()
    await orch.close()
    return statistics.median(bare), statistics.median(ours)


async def throughput(url: str, calls: int, concurrency: int, repeats: int) -> tuple[float, float]:
    """Median wall seconds for ``calls`` concurrent calls: (gather + semaphore, execute_multiple)."""
    client = bare_client(url)
    orch = orchestrator(url, concurrency)
    semaphore = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with semaphore:
            await bare_call(client, i)

    tasks = [("code-reviewer", f"{TASK} #{i}") for i in range(calls)]
    bare, ours = [], []
    await asyncio.gather(*(limited(i) for i in range(concurrency)))  # open the connections
    await orch.execute_multiple(tasks[:concurrency], system=SYSTEM, max_tokens=256)

    async def run_bare() -> None:
        start = time.perf_counter()
        await asyncio.gather(*(limited(i) for i in range(calls)))
        bare.append(time.perf_counter() - start)

    async def run_ours() -> None:
        start = time.perf_counter()
        results = await orch.execute_multiple(tasks, system=SYSTEM, max_tokens=256)
        ours.append(time.perf_counter() - start)
        assert all(r.success for r in results)

    await alternate(run_bare, run_ours, repeats)
    await client.close()
    await orch.close()
    return statistics.median(bare), statistics.median(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per overhead sample")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    os.environ.pop("ANTHROPIC_API_KEY", None)
    fast, fast_url = start_server(0.0)
    slow, slow_url = start_server(0.2)
    try:
        bare_call_s, ours_call_s = asyncio.run(overhead(fast_url, args.calls, args.repeats))
        bare_wall, ours_wall = asyncio.run(throughput(slow_url, 200, 50, args.repeats))
    finally:
        fast.terminate()
        slow.terminate()
    ideal = 200 / 50 * 0.2
    print(f"python {sys.version.split()[0]}, anthropic {anthropic.__version__}, medians of {args.repeats} runs\n")
    print("| measure | bare SDK | execute_agent / execute_multiple | ratio |")
    print("|---|---|---|---|")
    print(
        f"| per-call time, 0 ms server latency, sequential | {bare_call_s * 1e3:.3f} ms "
        f"| {ours_call_s * 1e3:.3f} ms | {ours_call_s / bare_call_s:.3f} |"
    )
    print(
        f"| 200 calls x 200 ms, concurrency 50, wall | {bare_wall:.3f} s | {ours_wall:.3f} s "
        f"| {ours_wall / bare_wall:.3f} |"
    )
    print(f"| same, vs the ideal {ideal:.1f} s | {bare_wall / ideal:.3f}x ideal | {ours_wall / ideal:.3f}x ideal | |")


if __name__ == "__main__":
    main()
