"""The team cache on PostgreSQL: eight kernels at once, hit latency, write throughput, and an outage.

Run: python bench/team.py [--prompts 200] [--kernels 8] [--lookups 2000] [--outage 5]

Starts a throwaway PostgreSQL cluster (Debian's server binaries; as the
postgres user when run as root) and the local Messages API server.

1. **Eight kernels**: ``--kernels`` processes each run the same sweep of
   ``--prompts`` prompts at once (0.3 s per answer), each with its own cache
   file and the one database. Printed: requests that reached the server (the
   goal is one per prompt) and whether every process got every answer right.
2. **Hit latency**: ``ResponseCache.lookup`` medians, in one run, for answers
   found in the database (a fresh file in front of it), in the SQLite file,
   and in memory with the team cache on and off.
3. **Throughput**: eight processes each store answers as fast as they can;
   answers per second reaching the table, and its size per 10,000 answers.
4. **Outage**: a 500-call sweep whose database is stopped for ``--outage``
   seconds in the middle. Calls lost, the most writes queued, and how long
   the queue took to drain once the database was back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the suite's throwaway cluster
from postgres import Cluster, binaries

from claude_force_nb import AsyncAgentOrchestrator, ResponseCache
from claude_force_nb._request import Completion, Request
from claude_force_nb.simulator import LocalServer

SECRET = "bench-team-secret-shared-by-every-kernel"
KERNEL = textwrap.dedent(
    """
    import asyncio, json, sys
    from claude_force_nb import AsyncAgentOrchestrator

    async def main(path, url, base, count):
        async with AsyncAgentOrchestrator(
            api_key="k", base_url=base, cache_path=path, cache_url=url, max_retries=0, max_concurrent=50
        ) as o:
            print("ready", flush=True)
            sys.stdin.readline()
            tasks = [("explainer", f"Prompt {i}: why is the sky blue?") for i in range(count)]
            results = await o.execute_multiple(tasks)
            print(json.dumps([r.output if r.success else None for r in results]), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)
WRITER = textwrap.dedent(
    """
    import sys, time
    from claude_force_nb import ResponseCache
    from claude_force_nb._request import Completion, Request

    path, url, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cache = ResponseCache(path, team_url=url)
    text = "An answer of a typical length, " * 12
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(start, start + count):
        message = {"id": f"msg_{i}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 40, "output_tokens": 80}}
        request = Request.for_task(f"Task {i}", model="claude-sonnet-4-6", max_tokens=500)
        cache.store(request, Completion(message, 0.5, f"req_{i}", "https://api.anthropic.com", False))
    cache.close()
    print("done", flush=True)
    """
)


def env() -> dict[str, str]:
    return {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "CLAUDE_CACHE_SECRET": SECRET}


def start(script: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env()
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def eight_kernels(cluster: Cluster, home: Path, kernels: int, prompts: int) -> None:
    url = cluster.database()
    with LocalServer(latency=0.3, log_limit=10 * prompts) as server:
        started = [start(KERNEL, str(home / f"k{i}.sqlite"), url, server.url, str(prompts)) for i in range(kernels)]
        begun = time.perf_counter()
        outs = [p.communicate("go\n", timeout=600)[0] for p in started]
        wall = time.perf_counter() - begun
        sent = sum(r.path == "/v1/messages" for r in server.log)
    answers = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    right = all(a == answers[0] for a in answers) and all(x is not None for x in answers[0])
    print(
        f"1. {kernels} kernels × the same {prompts} prompts at once: {sent} requests reached the server "
        f"({'met' if sent == prompts else 'NOT met'}: {prompts}); {kernels * prompts:,} results, "
        f"{'all correct' if right else 'NOT all correct'}; {wall:.1f} s"
    )


def completion(i: int) -> Completion:
    message = {
        "id": f"msg_{i}",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": "An answer of a typical length, " * 12}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 40, "output_tokens": 80},
    }
    return Completion(message, 0.5, f"req_{i}", "https://api.anthropic.com", False)


def request(i: int) -> Request:
    return Request.for_task(f"Lookup {i}", model="claude-sonnet-4-6", max_tokens=500)


def timed(cache: ResponseCache, keys: list[str]) -> float:
    times = []
    for key in keys:
        begun = time.perf_counter()
        hit = cache.lookup(key, "https://api.anthropic.com")
        times.append(time.perf_counter() - begun)
        assert hit is not None
    return statistics.median(times)


def hit_latency(cluster: Cluster, home: Path, lookups: int) -> None:
    url = cluster.database()
    writer = ResponseCache(home / "writer.sqlite", team_url=url)
    keys = [writer.key(request(i)) for i in range(lookups)]
    for i in range(lookups):
        writer.store(request(i), completion(i))
    writer.close()
    fresh = ResponseCache(home / "fresh.sqlite", team_url=url, maxsize=lookups * 2)
    database = timed(fresh, keys)  # the file is empty: each is found in the database, then copied
    fresh.flush()  # the copies written, so their writer does not share the GIL with what is timed next
    memory_team = timed(fresh, keys)
    fresh.close()
    alone = ResponseCache(home / "writer.sqlite", maxsize=lookups * 2)
    file = timed(alone, keys)
    alone.flush()
    memory = timed(alone, keys)
    alone.close()
    print(
        f"2. hit latency, medians of {lookups:,}: database {database * 1e3:.2f} ms, SQLite file "
        f"{file * 1e3:.3f} ms ({database / file:.1f}× the file); memory {memory_team * 1e6:.0f} µs with the "
        f"team cache, {memory * 1e6:.0f} µs without ({memory_team / memory:.2f}×)"
    )


def throughput(cluster: Cluster, home: Path, writers: int = 8, each: int = 2500) -> None:
    url = cluster.database()
    started = [start(WRITER, str(home / f"w{i}.sqlite"), url, str(i * each), str(each)) for i in range(writers)]
    begun = time.perf_counter()
    for process in started:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in started:
        process.communicate(timeout=600)
    wall = time.perf_counter() - begun
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT count(*) FROM claude_force_nb_responses").fetchone()[0]
        size = conn.execute("SELECT pg_total_relation_size('claude_force_nb_responses')").fetchone()[0]
    print(
        f"3. {writers} writers: {rows:,} answers in the table in {wall:.1f} s, {rows / wall:,.0f} answers/s; "
        f"{size / rows * 10_000 / 2**20:.1f} MiB per 10,000 answers"
    )


def outage(cluster: Cluster, home: Path, seconds: float, calls: int = 500) -> None:
    url = cluster.database()
    queued_most = 0

    async def sweep() -> tuple[int, float, float]:
        nonlocal queued_most
        with LocalServer(latency=0.1, log_limit=10 * calls) as server:  # 500 calls, 4 at a time: 12.5 s
            async with AsyncAgentOrchestrator(
                api_key="k", base_url=server.url, cache_path=home / "outage.sqlite", cache_url=url, max_concurrent=4
            ) as o:
                team = o.cache._store.team  # type: ignore[union-attr]

                restarted: list[float] = []

                def stop_and_start() -> None:
                    time.sleep(3.0)  # a quarter of the way in
                    cluster.stop()
                    time.sleep(seconds)
                    cluster.start()
                    restarted.append(time.perf_counter())

                outage = threading.Thread(target=stop_and_start)
                outage.start()
                batch = o.batch([("explainer", f"Outage call {i}") for i in range(calls)])
                batch.start()
                drained_at = None
                while not batch.done or drained_at is None:
                    pending = team.pending
                    queued_most = max(queued_most, pending)
                    if restarted and drained_at is None and not pending:
                        drained_at = time.perf_counter()  # the backlog is gone, whatever the sweep still adds
                    await asyncio.sleep(0.02)
                results = await batch
                outage.join()
                await asyncio.to_thread(drain, team)
                return sum(not r.success for r in results), drained_at - restarted[0], 0.0

    lost, drained, _ = asyncio.run(sweep())
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT count(*) FROM claude_force_nb_responses").fetchone()[0]
    print(
        f"4. the database stopped for {seconds:g} s in a {calls}-call sweep: {lost} calls lost "
        f"({'met' if lost == 0 else 'NOT met'}: 0); at most {queued_most} writes queued; drained "
        f"{drained:.1f} s after the database came back; {rows} of {calls} answers in the table"
    )


def drain(team: object) -> float:
    """Seconds until the team store's queue is empty."""
    begun = time.perf_counter()
    while team.pending:  # type: ignore[attr-defined]
        time.sleep(0.02)
    return time.perf_counter() - begun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--kernels", type=int, default=8)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--outage", type=float, default=5.0)
    args = parser.parse_args()
    os.environ.update(env())
    found = binaries()
    if found is None:
        sys.exit("bench/team.py needs PostgreSQL's server binaries (Debian's postgresql package).")
    cluster = Cluster(found)
    cluster.start()
    home = Path(tempfile.mkdtemp(prefix="cfnb-bench-team-"))
    try:
        eight_kernels(cluster, home, args.kernels, args.prompts)
        hit_latency(cluster, home, args.lookups)
        throughput(cluster, home)
        outage(cluster, home, args.outage)
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()
