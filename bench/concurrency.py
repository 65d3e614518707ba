"""Concurrent throughput and per-call overhead of the orchestrator against the bare SDK.

Run: python bench/concurrency.py [--calls 200] [--repeats 9] [--concurrency 50] [--latency 0.2]

The headline: ``--calls`` calls, each a unique ~1 KB task, ``--concurrency`` at
a time, to the local Messages API server answering after ``--latency`` seconds.
One side is ``AsyncAgentOrchestrator.execute_multiple`` with its response cache
on (mode normal, a fresh cache file per repeat, so every call is a miss and is
stored); the other is ``AsyncAnthropic.messages.create`` under
``asyncio.gather`` and an ``asyncio.Semaphore``, with the same tasks, system
prompt and max_tokens. Each repeat builds both sides afresh, warms each up
(a concurrent round of other unique tasks, which opens the connections), then
times it; the side that goes first alternates between repeats.

A second section times calls one at a time against a server with no latency:
the per-call cost of each side when nothing overlaps.

The servers run in their own processes, so client and server do not share a
GIL; the cache's home (``CLAUDE_FORCE_NB_HOME``) and files are temporary
directories. Prints, as medians over the repeats: wall time of each side, the
ratio orchestrator / bare SDK, the extra wall time per call, the client
process's CPU time per call, and the ideal wall time (calls / concurrency x latency).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import anthropic

from claude_force_nb import AsyncAgentOrchestrator

MODEL = "claude-sonnet-4-6"
AGENT = "code-reviewer"
SYSTEM = "You are a meticulous code reviewer."
MAX_TOKENS = 256
# ~1,000 characters of code to review; each call's task adds its own number, so none is a cache hit.
FILLER = (
    "def moving_average(values, window):\n"
    "    if window <= 0:\n"
    "        raise ValueError('window must be positive')\n"
    "    total, out = 0.0, []\n"
    "    for index, value in enumerate(values):\n"
    "        total += value\n"
    "        if index >= window:\n"
    "            total -= values[index - window]\n"
    "        out.append(total / min(index + 1, window))\n"
    "    return out\n\n"
)
TEXT = (FILLER * (1000 // len(FILLER) + 1))[:1000]


def tasks_for(tag: str, count: int) -> list[str]:
    """``count`` unique ~1 KB tasks; ``tag`` keeps each repeat's (and each warm-up's) apart."""
    return [f"Review this code.\n\n{TEXT}\n# call {tag}-{i}" for i in range(count)]


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


def orchestrator(url: str, concurrency: int, cache_dir: str) -> AsyncAgentOrchestrator:
    return AsyncAgentOrchestrator(
        max_concurrent=concurrency,
        api_key="bench",
        base_url=url,
        model=MODEL,
        cache_path=Path(cache_dir) / "responses.sqlite",
        cache_mode="normal",
    )


async def bare_call(client: anthropic.AsyncAnthropic, task: str) -> None:
    await client.messages.create(
        model=MODEL, max_tokens=MAX_TOKENS, system=SYSTEM, messages=[{"role": "user", "content": task}]
    )


def check(results: list, count: int) -> None:
    assert len(results) == count, len(results)
    failed = [r.error for r in results if not r.success]
    assert not failed, failed[:3]
    assert not any(r.cached for r in results), "a call was served from the cache: tasks must be unique"


# A side runs one repeat: builds its client, warms it up, and returns (wall seconds, CPU seconds) of the timed part.
Side = Callable[[int], Awaitable[tuple[float, float]]]


async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def alternate(bare: Side, ours: Side, repeats: int) -> tuple[list, list]:
    """Run both ``repeats`` times, swapping which goes first, so order effects cancel out."""
    samples: dict[Side, list[tuple[float, float]]] = {bare: [], ours: []}
    for repeat in range(repeats):
        for side in (bare, ours) if repeat % 2 == 0 else (ours, bare):
            samples[side].append(await side(repeat))
    return samples[bare], samples[ours]


async def concurrent(url: str, calls: int, concurrency: int, repeats: int) -> tuple[list, list]:
    """(wall, CPU) per repeat of ``calls`` concurrent calls: (gather + semaphore, execute_multiple)."""

    async def bare(repeat: int) -> tuple[float, float]:
        client = bare_client(url)
        semaphore = asyncio.Semaphore(concurrency)

        async def limited(task: str) -> None:
            async with semaphore:
                await bare_call(client, task)

        try:
            await asyncio.gather(*(limited(t) for t in tasks_for(f"bare-warm-{repeat}", concurrency)))
            tasks = tasks_for(f"conc-{repeat}", calls)
            return await timed(lambda: asyncio.gather(*(limited(t) for t in tasks)))
        finally:
            await client.close()

    async def ours(repeat: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory(prefix="cfnb-bench-cache-") as cache_dir:
            orch = orchestrator(url, concurrency, cache_dir)
            try:
                warm = [(AGENT, t) for t in tasks_for(f"ours-warm-{repeat}", concurrency)]
                check(await orch.execute_multiple(warm, system=SYSTEM, max_tokens=MAX_TOKENS), concurrency)
                tasks = [(AGENT, t) for t in tasks_for(f"conc-{repeat}", calls)]
                results: list = []

                async def run() -> None:
                    results.extend(await orch.execute_multiple(tasks, system=SYSTEM, max_tokens=MAX_TOKENS))

                sample = await timed(run)
                check(results, calls)
                return sample
            finally:
                await orch.close()

    return await alternate(bare, ours, repeats)


async def sequential(url: str, calls: int, repeats: int) -> tuple[list, list]:
    """(wall, CPU) per repeat of ``calls`` calls one after another: (messages.create, execute_agent)."""

    async def bare(repeat: int) -> tuple[float, float]:
        client = bare_client(url)
        try:
            for task in tasks_for(f"bare-seq-warm-{repeat}", 20):
                await bare_call(client, task)
            tasks = tasks_for(f"seq-{repeat}", calls)

            async def run() -> None:
                for task in tasks:
                    await bare_call(client, task)

            return await timed(run)
        finally:
            await client.close()

    async def ours(repeat: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory(prefix="cfnb-bench-cache-") as cache_dir:
            orch = orchestrator(url, 1, cache_dir)
            try:
                for task in tasks_for(f"ours-seq-warm-{repeat}", 20):
                    await orch.execute_agent(AGENT, task, system=SYSTEM, max_tokens=MAX_TOKENS)
                tasks = tasks_for(f"seq-{repeat}", calls)
                results: list = []

                async def run() -> None:
                    for task in tasks:
                        results.append(await orch.execute_agent(AGENT, task, system=SYSTEM, max_tokens=MAX_TOKENS))

                sample = await timed(run)
                check(results, calls)
                return sample
            finally:
                await orch.close()

    return await alternate(bare, ours, repeats)


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per timed run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each side (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=50, help="calls in flight at once (default: %(default)s)")
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per answer (default: %(default)s)")
    args = parser.parse_args()
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "CLAUDE_FORCE_NB_CACHE_MODE"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    home = tempfile.TemporaryDirectory(prefix="cfnb-bench-home-")
    os.environ["CLAUDE_FORCE_NB_HOME"] = home.name  # the cache's secret goes here, not in the user's home
    slow, slow_url = start_server(args.latency)
    fast, fast_url = start_server(0.0)
    try:
        conc_bare, conc_ours = asyncio.run(concurrent(slow_url, args.calls, args.concurrency, args.repeats))
        seq_bare, seq_ours = asyncio.run(sequential(fast_url, args.calls, args.repeats))
    finally:
        slow.terminate()
        fast.terminate()
        slow.wait()
        fast.wait()
        home.cleanup()

    n = args.calls
    ideal = n / args.concurrency * args.latency
    bare_wall, bare_cpu = medians(conc_bare)
    ours_wall, ours_cpu = medians(conc_ours)
    seq_bare_wall, seq_bare_cpu = medians(seq_bare)
    seq_ours_wall, seq_ours_cpu = medians(seq_ours)
    size = len(tasks_for("x", 1)[0])
    print(
        f"python {sys.version.split()[0]}, anthropic {anthropic.__version__}; {n} calls of ~{size} chars each; "
        f"medians of {args.repeats} runs; cache on (normal mode, fresh file per run, every call a miss)\n"
    )
    print(f"{n} calls x {args.latency * 1e3:g} ms latency, concurrency {args.concurrency} (ideal {ideal:.3f} s):\n")
    print("| measure | bare SDK (gather + semaphore) | execute_multiple | ratio |")
    print("|---|---|---|---|")
    print(f"| wall time | {bare_wall:.3f} s | {ours_wall:.3f} s | {ours_wall / bare_wall:.3f} |")
    print(f"| wall time vs ideal | {bare_wall / ideal:.3f}x | {ours_wall / ideal:.3f}x | |")
    print(
        f"| client CPU per call | {bare_cpu / n * 1e3:.3f} ms | {ours_cpu / n * 1e3:.3f} ms "
        f"| {ours_cpu / bare_cpu:.3f} |"
    )
    print(f"\nextra wall time per call: {(ours_wall - bare_wall) / n * 1e3:.3f} ms")
    print(f"extra client CPU per call: {(ours_cpu - bare_cpu) / n * 1e3:.3f} ms\n")
    print(f"{n} calls one at a time, 0 ms latency:\n")
    print("| measure | bare SDK (messages.create) | execute_agent | ratio |")
    print("|---|---|---|---|")
    print(
        f"| time per call | {seq_bare_wall / n * 1e3:.3f} ms | {seq_ours_wall / n * 1e3:.3f} ms "
        f"| {seq_ours_wall / seq_bare_wall:.3f} |"
    )
    print(
        f"| client CPU per call | {seq_bare_cpu / n * 1e3:.3f} ms | {seq_ours_cpu / n * 1e3:.3f} ms "
        f"| {seq_ours_cpu / seq_bare_cpu:.3f} |"
    )
    print(f"\nextra time per call, sequential: {(seq_ours_wall - seq_bare_wall) / n * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
