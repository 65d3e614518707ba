"""How fast does a background sweep go while a cell computes?

Run: python bench/background.py [--calls 40] [--repeats 7] [--latency 0.3] [--offline] [--first]

In a real kernel, starts ``%%agents --background`` sweeps of ``--calls``
calls (10 at a time, cache off) and times each from its start until every
call has finished, while the next cell either sleeps (the baseline: the
worker thread has the GIL to itself) or computes in a busy loop. With
``--first`` each sweep is the first of a fresh kernel, one-time work
included; otherwise one warmed-up kernel runs them all. Computing is timed
twice: with the switch interval a background sweep sets (1 ms), and with
CPython's default (5 ms) that the kernel would otherwise keep. The three
kinds alternate so that drift hits them alike. The local Messages API server
runs in a separate process, or with ``--offline`` inside the kernel, where it
shares the GIL too. Prints medians and their ratio to the baseline as a
markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

try:
    from concurrency import start_server  # run as a script from bench/
except ImportError:
    from bench.concurrency import start_server

KINDS = {
    "sleeping (baseline)": ("sleep", 0.001),
    "computing, 1 ms switch interval": ("compute", 0.001),
    "computing, CPython's 5 ms": ("compute", 0.005),
}
WAIT = {
    "sleep": "time.sleep(0.001)",
    "compute": "pass",
}


def cells(calls: int, how: str, interval: float) -> list[str]:
    return [
        f"_loop.SWEEP_SWITCH_INTERVAL = {interval}\nitems = list(range({calls}))\nstart = time.monotonic()",
        "%%agents explainer --over items -c 10 --background --no-cache -o sweep --no-panel\nItem {item}",
        f"while sweep.progress.finished < len(items):\n    {WAIT[how]}\n"
        "print(round(time.monotonic() - start, 4), sweep.progress.succeeded)",
    ]


class Kernel:
    """A kernel to run cells in, one at a time, returning what each printed."""

    def __init__(self) -> None:
        self.nb = new_notebook()
        self.client = NotebookClient(
            self.nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}
        )

    async def run(self, source: str) -> str:
        cell = new_code_cell(source)
        self.nb.cells.append(cell)
        await self.client.async_execute_cell(cell, len(self.nb.cells) - 1)
        return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


SETUP = "%load_ext claude_force_nb\nimport time\nfrom claude_force_nb._notebook import loop as _loop"


async def sweep(kernel: Kernel, calls: int, how: str, interval: float) -> float:
    for source in cells(calls, how, interval):
        printed = await kernel.run(source)
    seconds, succeeded = printed.split()
    assert int(succeeded) == calls, printed
    return float(seconds)


async def measure(calls: int, repeats: int, first: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    if first:
        for _ in range(repeats):
            for kind, (how, interval) in KINDS.items():
                kernel = Kernel()
                async with kernel.client.async_setup_kernel():
                    await kernel.run(SETUP)
                    times[kind].append(await sweep(kernel, calls, how, interval))
        return times
    kernel = Kernel()
    async with kernel.client.async_setup_kernel():
        await kernel.run(SETUP)
        for run in range(-1, repeats):  # the first round warms the kernel up and is not counted
            for kind, (how, interval) in KINDS.items():
                seconds = await sweep(kernel, calls, how, interval)
                if run >= 0:
                    times[kind].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--offline", action="store_true", help="the bundled server, inside the kernel")
    parser.add_argument("--first", action="store_true", help="each sweep the first of a fresh kernel")
    args = parser.parse_args()
    os.environ["NO_PROXY"] = ",".join(filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1,localhost")))
    os.environ["CLAUDE_FORCE_NB_HOME"] = tempfile.mkdtemp(prefix="bench-background-")
    server = None
    if args.offline:
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
            os.environ.pop(name, None)
        os.environ["CLAUDE_FORCE_NB_SIMULATOR_LATENCY"] = str(args.latency)
    else:
        server, url = start_server(args.latency)
        os.environ.update(ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=url)
    try:
        times = asyncio.run(measure(args.calls, args.repeats, args.first))
    finally:
        if server is not None:
            server.kill()
    where = "inside the kernel" if args.offline else "in its own process"
    kernels = "each the first of a fresh kernel" if args.first else "in one warmed-up kernel"
    ideal = args.calls / 10 * args.latency
    print(
        f"python {sys.version.split()[0]}; {args.calls} calls, 10 at a time, {args.latency:g} s each "
        f"(at least {ideal:.1f} s); server {where}; medians of {args.repeats} sweeps, {kernels}\n"
    )
    baseline = statistics.median(times["sleeping (baseline)"])
    print("| while the next cell is | sweep takes | vs sleeping |")
    print("|---|---:|---:|")
    for kind, measured in times.items():
        median = statistics.median(measured)
        print(f"| {kind} | {median:.2f} s | {median / baseline:.2f}x |")


if __name__ == "__main__":
    main()
