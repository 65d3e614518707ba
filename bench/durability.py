"""How long an answer waits in memory before it is in the cache file (the write-behind window).

Run: python bench/durability.py [--answers 1000] [--runs 5]

Answers (10 KB prompts) are stored from an event loop as a sweep delivers
them, while a second connection (another thread, as another process would)
polls the file every 0.5 ms. An answer's lag is the time from ``store()``
returning to the poll that first sees its row committed; after a kill -9,
only answers inside that window can be missing. Two paces: a burst (one
answer per loop iteration, as a sweep of cache hits or a fast local server
delivers them) and a steady 200 answers a second. The baseline, measured in
the same run, is a write-through store: each answer waits for its own commit,
which leaves no window but blocks the event loop for every commit.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cache import SIZES, make_completion, make_requests, open_cache

POLL = 0.0005


class Watcher(threading.Thread):
    """Records when the file first holds at least n rows, for each n."""

    def __init__(self, path: Path, expected: int):
        super().__init__(daemon=True)
        self.path, self.expected = path, expected
        self.seen: list[float] = []

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        while len(self.seen) < self.expected:
            count = db.execute("SELECT count(*) FROM responses").fetchone()[0]
            now = time.perf_counter()
            self.seen += [now] * (count - len(self.seen))
            time.sleep(POLL)
        db.close()


async def store_all(directory: Path, answers: int, pace: float | None, tag: str) -> list[float]:
    path = directory / f"{tag}.sqlite"
    cache = open_cache(path)
    cache.flush()  # the file and its table exist before the watcher opens it
    requests = make_requests(SIZES["10 KB"], answers, tag)
    completion = make_completion()
    watcher = Watcher(path, answers)
    watcher.start()
    stored = []
    for request in requests:
        cache.store(request, completion)
        stored.append(time.perf_counter())
        await asyncio.sleep(pace or 0)
    await asyncio.get_running_loop().run_in_executor(None, watcher.join)
    cache.close()
    return [seen - at for seen, at in zip(watcher.seen, stored, strict=True)]


def write_through(directory: Path, answers: int) -> list[float]:
    """Seconds per answer when each one waits for its commit (``store`` then ``flush``)."""
    cache = open_cache(directory / "through.sqlite")
    completion = make_completion()
    costs = []
    for request in make_requests(SIZES["10 KB"], answers, "through"):
        start = time.perf_counter()
        cache.store(request, completion)
        cache.flush()
        costs.append(time.perf_counter() - start)
    cache.close()
    return costs


def cuts(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"{q[49] * 1e3:.1f} | {q[98] * 1e3:.1f} | {max(samples) * 1e3:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    burst: list[float] = []
    steady: list[float] = []
    through: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            directory = Path(tmp) / str(run)
            directory.mkdir()
            burst += asyncio.run(store_all(directory, args.answers, None, "burst"))
            steady += asyncio.run(store_all(directory, args.answers // 4, 0.005, "steady"))
            through += write_through(directory, args.answers // 4)
    print(f"{args.answers:,} answers per burst, {args.answers // 4:,} at 200/s; {args.runs} runs pooled\n")
    print("| store → in the file (ms) | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    print(f"| burst, write-behind | {cuts(burst)} |")
    print(f"| 200 answers/s, write-behind | {cuts(steady)} |")
    print(f"| baseline: write-through, loop blocked per answer | {cuts(through)} |")


if __name__ == "__main__":
    main()
