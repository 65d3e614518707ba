"""A 10,000-item sweep through the Message Batches API, end to end, and a kernel restart in the middle of one.

Run: python bench/batches.py [--items 10000] [--batch-seconds 5]

Against the local Messages API server (in this process), whose batches take
``--batch-seconds`` to process:

1. ``execute_batch``: submit, poll, collect and cache ``--items`` calls;
   then the same sweep again (every answer a cache hit). Beside it, the
   baseline: ``execute_multiple`` at ``-c 50`` over the same server, one
   HTTP call each (cache off), in the same run.
2. A real kernel runs ``%%agents … --batch --background``; once the batch is
   submitted the kernel is restarted, and the new kernel runs the same cell:
   it finds the batch in the cache file's journal, collects it, and submits
   nothing.

Printed: wall times, the ratio to the baseline, the time beyond the
server's processing, batches created, and how far the process's peak
resident set grew during the sweep (the SDK is imported first; the server's
own memory is included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import anthropic  # noqa: F401  (imported first, so the memory figure is the sweep's)

from claude_force_nb import AsyncAgentOrchestrator
from claude_force_nb.simulator import LocalServer

AGENT = "explainer"


def tasks(count: int, prefix: str = "item") -> list[tuple[str, str]]:
    return [(AGENT, f"{prefix} {i}: explain in one sentence why it matters.") for i in range(count)]


def created(server: LocalServer) -> int:
    """Batches the server holds (a submission cut off mid-upload creates none)."""
    return len(server.state.batches)


def submissions(server: LocalServer) -> int:
    """Submissions the server began to receive."""
    return sum(r.method == "POST" and r.path == "/v1/messages/batches" for r in server.log)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def through_batches(server: LocalServer, home: Path, items: int) -> dict[str, float]:
    rss = rss_mib()
    start = time.perf_counter()
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="bench", cache_path=home / "c.sqlite") as orch:
        results = await orch.execute_batch(tasks(items), poll_seconds=1.0)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        again = await orch.execute_batch(tasks(items), poll_seconds=1.0)
        rerun = time.perf_counter() - start
    assert all(r.success for r in results), [r.errors for r in results if not r.success][:3]
    assert all(r.cached for r in again)
    return {"wall": elapsed, "rerun": rerun, "rss": rss_mib() - rss}


async def one_by_one(server: LocalServer, items: int) -> float:
    start = time.perf_counter()
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="bench", enable_cache=False, max_concurrent=50
    ) as orch:
        results = await orch.execute_multiple(tasks(items, "live"))
    assert all(r.success for r in results)
    return time.perf_counter() - start


def restart_mid_batch(server: LocalServer, home: Path, items: int) -> dict[str, float]:
    """A kernel submits a --batch sweep in the background and is restarted; the new kernel collects it."""
    from jupyter_client.manager import start_new_kernel

    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "bench",
        "CLAUDE_FORCE_NB_HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    cell = f"%%agents {AGENT} --over items --batch --no-panel -o run{{}};\n{{{{item}}}}: explain in one sentence."
    setup = (
        "%load_ext claude_force_nb\n"
        "%config AgentMagics.batch_poll_seconds = 1.0\n"
        f"items = [f'restart {{i}}' for i in range({items})]"
    )
    before, began = created(server), submissions(server)
    try:
        kc.execute_interactive(setup, timeout=120)
        kc.execute_interactive(cell.format(" --background"), timeout=300)
        while submissions(server) == began:  # the submission has begun (written down first)
            time.sleep(0.05)
        start = time.perf_counter()
        km.restart_kernel(now=True)
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive(setup, timeout=120)
        kc.execute_interactive(cell.format(""), timeout=600)
        outputs: list[str] = []
        kc.execute_interactive(
            "print(len(run), sum(r.success for r in run))",
            timeout=60,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")),
        )
        elapsed = time.perf_counter() - start
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    total, ok = map(int, "".join(outputs).split())
    return {
        "wall": elapsed,
        "answers": total,
        "succeeded": ok,
        "created": created(server) - before,
        "submissions": submissions(server) - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-seconds", type=float, default=5.0)
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel restart")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalServer(batch_seconds=args.batch_seconds) as server:
        home = Path(tmp)
        print(f"{args.items:,} calls; the local server takes {args.batch_seconds:g} s per batch\n")
        batch = asyncio.run(through_batches(server, home, args.items))
        batches = created(server)
        baseline = asyncio.run(one_by_one(server, args.items))
        print("| run | wall | × one by one | beyond the server's processing | batches created | peak RSS growth |")
        print("|---|---:|---:|---:|---:|---:|")
        print(
            f"| `execute_batch`: submit, poll, collect, cache | {batch['wall']:.1f} s | {batch['wall'] / baseline:.2f} "
            f"| {batch['wall'] - args.batch_seconds:.1f} s | {batches} | {batch['rss']:.0f} MiB |"
        )
        rerun = batch["rerun"]
        print(f"| the same sweep again (all cache hits) | {rerun:.2f} s | {rerun / baseline:.3f} | | 0 | |")
        print(f"| baseline: `execute_multiple`, -c 50, one call each | {baseline:.1f} s | 1.00 | | | |")
        if not args.no_kernel:
            restart = restart_mid_batch(server, home / "kernel", args.items)
            print(
                f"\nKernel restarted mid-batch: the new kernel's cell took {restart['wall']:.1f} s "
                f"(restart included); {restart['succeeded']:,} of {restart['answers']:,} answers; "
                f"batches created for it: {restart['created']} (1 means nothing was submitted twice; "
                f"submissions begun: {restart['submissions']})"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
