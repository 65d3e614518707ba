"""Does the live stats panel slow a sweep down?

Run: python bench/panel.py [--calls 200] [--repeats 15] [--latency 0.05]

Times the same sweep with and without ``StatsPanel.on_update`` as the
batch's callback, alternating the two so drift hits both alike, against the
local Messages API server in a separate process (no shared GIL). The cache
is off so every call reaches the server. Outside a kernel the widgets have
no frontend, so this measures the panel's own work, not message transport.
Prints medians and their ratio (target: at most 1.02) as a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb._notebook.panel import StatsPanel

try:
    from concurrency import start_server  # run as a script from bench/
except ImportError:
    from bench.concurrency import start_server

CONCURRENCY = 50


class Counted:
    """Stands in for the orchestrator in the panel, counting redraws (one ``stats()`` read each)."""

    def __init__(self, orchestrator: AsyncAgentOrchestrator):
        self.orchestrator = orchestrator
        self.updates = 0
        self.redraws = 0

    def stats(self):
        self.redraws += 1
        return self.orchestrator.stats()

    def pace(self):
        return self.orchestrator.pace()

    def spent(self):
        return self.orchestrator.spent()


async def one_sweep(orchestrator: AsyncAgentOrchestrator, calls: list, with_panel: bool) -> tuple[float, int, int]:
    """Seconds for one sweep, with the number of updates and redraws."""
    counted = Counted(orchestrator)
    panel = StatsPanel(counted) if with_panel else None

    def on_update(batch) -> None:
        counted.updates += 1
        panel.on_update(batch)

    batch = orchestrator.batch(calls, on_update=on_update if panel else None)
    if panel:
        panel.watch(batch)
    start = time.perf_counter()
    await batch
    if panel:
        panel.refresh()
    return time.perf_counter() - start, counted.updates, counted.redraws


async def bench(url: str, n_calls: int, repeats: int) -> dict[bool, list[tuple[float, int, int]]]:
    calls = [("code-reviewer", f"Review: def f{i}(x): return x + {i}") for i in range(n_calls)]
    runs: dict[bool, list[tuple[float, int, int]]] = {False: [], True: []}
    async with AsyncAgentOrchestrator(
        enable_cache=False, api_key="bench", base_url=url, max_concurrent=CONCURRENCY
    ) as orchestrator:
        await one_sweep(orchestrator, calls, False)  # warm up connections
        for i in range(repeats):
            order = (False, True) if i % 2 == 0 else (True, False)
            for with_panel in order:
                runs[with_panel].append(await one_sweep(orchestrator, calls, with_panel))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per call, seconds")
    args = parser.parse_args()

    proc, url = start_server(args.latency)
    try:
        runs = asyncio.run(bench(url, args.calls, args.repeats))
    finally:
        proc.terminate()
        proc.wait()
    without = statistics.median(t for t, _, _ in runs[False])
    with_panel = statistics.median(t for t, _, _ in runs[True])
    updates = statistics.median(u for _, u, _ in runs[True])
    redraws = statistics.median(r for _, _, r in runs[True])
    print(
        f"{args.calls} calls, {CONCURRENCY} in flight, server latency {args.latency * 1000:.0f} ms, "
        f"median of {args.repeats} sweeps each\n"
    )
    print("| sweep | median seconds | on_update calls | redraws |")
    print("|---|---:|---:|---:|")
    print(f"| without panel | {without:.3f} | - | - |")
    print(f"| with panel | {with_panel:.3f} | {updates:.0f} | {redraws:.0f} |")
    print(f"| ratio | {with_panel / without:.3f} | | |")


if __name__ == "__main__":
    main()
