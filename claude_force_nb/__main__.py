"""Command line: ``python -m claude_force_nb demo``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ._orchestrator import AsyncAgentOrchestrator
from ._results import AgentResult

DEMO_TASKS = [
    ("code-reviewer", "def mean(xs):\n    return sum(xs) / len(xs)"),
    ("python-expert", "How do I read a large CSV file in chunks?"),
    ("explainer", "What does Python's GIL do?"),
    ("summarizer", "Caching stores the answers to expensive calls so repeated calls return at once."),
    ("test-writer", "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))"),
]


def _row(result: AgentResult) -> str:
    first = (result.output.strip().splitlines() or [""])[0] if result.success else result.errors[0]
    return (f"  {result.agent_name:<14} {result.status:<9} {result.latency * 1000:>9.1f} ms "
            f"{result.tokens:>6} tok  {first[:60]}")


async def demo(runs: int) -> int:
    async with AsyncAgentOrchestrator(max_concurrent=10) as orchestrator:
        for run in range(1, runs + 1):
            start = time.perf_counter()
            results = await orchestrator.execute_multiple(DEMO_TASKS)
            wall = time.perf_counter() - start
            print(f"Run {run}: {len(results)} agents concurrently in {wall * 1000:.1f} ms "
                  f"(sum of call times {sum(r.latency for r in results) * 1000:.1f} ms)")
            for result in results:
                print(_row(result))
        stats = orchestrator.stats()
        print(f"Cache: {stats.hits} hits, {stats.misses} misses, hit rate {stats.hit_rate:.0%}, "
              f"speedup {stats.speedup:.1f}x, time saved {stats.time_saved:.2f} s")
        if orchestrator.cache is not None:
            print(f"Cache file: {orchestrator.cache.info().path}")
        return 0 if all(r.success for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claude_force_nb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo_parser = sub.add_parser("demo", help="run a few agents concurrently, twice, and show the cache at work")
    demo_parser.add_argument("--runs", type=int, default=2, help="how many times to run the agents (default 2)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return asyncio.run(demo(args.runs))
    return 2


if __name__ == "__main__":
    sys.exit(main())
