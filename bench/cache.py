"""Cache hit latency against the floor and two peers; event-loop lag while storing.

Run: python bench/cache.py [--keys 1000] [--rounds 15] [--stores 1000] [--lag-runs 5]

Every contender looks up the same distinct requests (1 KB and 10 KB prompts,
a ~1.2 KB answer) and is timed in interleaved rounds; the tables show median
microseconds per lookup and the ratio to the floor, which is the least any
cache keyed on the whole request must do: canonical ``json.dumps`` +
SHA-256 + ``cachetools.TTLCache.get``.

- memory hit: ``ResponseCache.lookup`` when the answer is in memory.
- cold file hit: a new process opens the cache file and times the first
  lookup of each key (memory empty; the file and the OS page cache warm,
  as after a kernel restart); the median over ``--cold-processes`` processes.
- LangChain: ``InMemoryCache.lookup`` plus the key a chat model builds for it
  (``dumps(messages)`` and the sorted-params string).
- litellm: ``Cache(type="local").get_cache(**kwargs)``, which builds its key.

Event-loop lag: in a fresh process, a 1 ms ticker runs while 1,000 answers
(10 KB prompts) are stored one per loop iteration, as they would arrive from
a sweep; its lateness is compared with the same ticker idle. Ticks from
``--lag-runs`` runs are pooled for the percentiles.

Peers that are not installed (``pip install langchain-core litellm``) show n/a.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cachetools

from claude_force_nb._cache import ResponseCache
from claude_force_nb._config import Settings
from claude_force_nb._request import Completion, Request

MODEL = "claude-sonnet-4-6"
SYSTEM = "You are a careful assistant. Answer precisely and cite the lines you rely on."
SECRET = b"bench-secret"
SIZES = {"1 KB": 1_000, "10 KB": 10_000}
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "judge",
    "boxing",
    "matches",
]

# -- workload ------------------------------------------------------------------------------------------


def make_requests(size: int, count: int, tag: str) -> list[Request]:
    """``count`` distinct requests whose prompt is about ``size`` characters."""
    filler = " ".join(WORDS[i % len(WORDS)] for i in range(size // 4))[:size]
    return [
        Request.for_task(f"[{tag} {i}] {filler}", model=MODEL, max_tokens=1024, system=SYSTEM, temperature=0.2)
        for i in range(count)
    ]


def make_completion() -> Completion:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(200))
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 250, "output_tokens": 200},
    }
    return Completion(message, 1.8, "req_bench")


def open_cache(path: Path, **kwargs) -> ResponseCache:
    kwargs.setdefault("max_rows", 1_000_000)  # the big-file case must keep every row
    return ResponseCache(path, secrets=[SECRET], settings=Settings(home=path.parent), **kwargs)


# -- contenders ----------------------------------------------------------------------------------------
# Each returns a function that looks up one request (already stored), or None if unavailable.


def floor(requests: list[Request]) -> Callable[[Request], object]:
    cache = cachetools.TTLCache(maxsize=len(requests) * 2, ttl=3600)

    def key(request: Request) -> str:
        return hashlib.sha256(json.dumps(request.to_kwargs(), sort_keys=True).encode()).hexdigest()

    for request in requests:
        cache[key(request)] = make_completion()
    return lambda request: cache.get(key(request))


def response_cache(requests: list[Request], path: Path) -> Callable[[Request], object]:
    cache = open_cache(path)
    completion = make_completion()
    for request in requests:
        cache.store(request, completion)
    cache.flush()
    return lambda request: cache.lookup(cache.key(request))


def langchain(requests: list[Request]) -> Callable[[Request], object] | None:
    try:
        from langchain_core.caches import InMemoryCache
        from langchain_core.load import dumps
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
        from langchain_core.outputs import ChatGeneration
    except ImportError:
        return None
    cache = InMemoryCache()
    # A chat model's inputs are message objects already; building them is not the cache's cost.
    messages = {id(r): [SystemMessage(r.system), HumanMessage(r.task)] for r in requests}

    def key(request: Request) -> tuple[str, str]:
        # What BaseChatModel does before llm_cache.lookup: dumps(messages) and the params string.
        params = {"model": request.model, "max_tokens": request.max_tokens, **request.extra_body, "stop": None}
        return dumps(messages[id(request)]), str(sorted(params.items()))

    answer = [ChatGeneration(message=AIMessage(make_completion().text))]
    for request in requests:
        cache.update(*key(request), answer)
    return lambda request: cache.lookup(*key(request))


def litellm(requests: list[Request]) -> Callable[[Request], object] | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    try:
        from litellm.caching.caching import Cache
        from litellm.caching.in_memory_cache import InMemoryCache
    except ImportError:
        return None
    cache = Cache(type="local")
    cache.cache = InMemoryCache(max_size_in_memory=len(requests) * 2)  # the default keeps only 200

    def kwargs(request: Request) -> dict:
        messages = [{"role": "system", "content": request.system}, *request.messages]
        return {"model": request.model, "messages": messages, "max_tokens": request.max_tokens, **request.extra_body}

    prepared = {id(r): kwargs(r) for r in requests}
    for request in requests:
        cache.add_cache(make_completion().message, **prepared[id(request)])
    return lambda request: cache.get_cache(**prepared[id(request)])


def execute_agent(requests: list[Request], path: Path) -> Callable[[Request], object] | None:
    """``AsyncAgentOrchestrator.execute_agent`` on a memory hit, agent lookup and result included.

    A hit never suspends, so the coroutine is driven with one ``send`` and the
    figure holds no event-loop overhead, as a caller already on the loop sees.
    """
    from claude_force_nb import AsyncAgentOrchestrator

    cache = open_cache(path)
    orchestrator = AsyncAgentOrchestrator(cache=cache, api_key="bench", base_url="http://127.0.0.1:9")
    completion = make_completion()
    for request in requests:
        cache.store(request, completion, origin=orchestrator.backend.origin)

    def hit(request: Request) -> object:
        coroutine = orchestrator.execute_agent(
            "explainer",
            request.task,
            model=request.model,
            max_tokens=request.max_tokens,
            system=request.system,
            **request.extra_body,
        )
        try:
            coroutine.send(None)
        except StopIteration as done:
            result = done.value
            return result if result.cached else None
        raise RuntimeError("execute_agent suspended: not a memory hit")

    return hit


# -- timing --------------------------------------------------------------------------------------------


def interleaved_medians(contenders: dict[str, Callable | None], requests: list[Request], rounds: int) -> dict:
    """Median µs per lookup for each contender, timed round-robin so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name, fn in contenders.items() if fn is not None}
    for fn in contenders.values():
        if fn is not None:
            for request in requests:  # warm-up, and a check that every lookup hits
                assert fn(request) is not None
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in contenders.items():
                if fn is None:
                    continue
                start = time.perf_counter()
                for request in requests:
                    fn(request)
                samples[name].append((time.perf_counter() - start) / len(requests) * 1e6)
    finally:
        gc.enable()
    return {
        name: statistics.median(values) if name in samples else None
        for name, values in ((n, samples.get(n, [])) for n in contenders)
    }


def cold_child(path: str, size: int, keys: int) -> None:
    """In a fresh process: time the first lookup of each key straight from the file."""
    warm = make_requests(size, keys, "warm")
    timed = make_requests(size, keys, "cold")
    cache = open_cache(Path(path))
    for request in warm:  # loads code, schema and pages; these keys are not timed
        assert cache.lookup(cache.key(request)) is not None
    gc.collect()
    gc.disable()
    times = []
    for request in timed:
        start = time.perf_counter()
        found = cache.lookup(cache.key(request))
        times.append(time.perf_counter() - start)
        assert found is not None
    print(json.dumps({"median_us": statistics.median(times) * 1e6, "file_hits": cache.stats().file_hits}))


def cold_file_hit(directory: Path, size: int, keys: int, processes: int, filler: int = 0) -> list[float]:
    """Per-process medians; several processes, since a whole process can land on a busy core.

    ``filler`` more rows, stored first, make the file that much bigger.
    """
    path = directory / f"cold-{size}-{filler}.sqlite"
    cache = open_cache(path)
    completion = make_completion()
    for request in make_requests(200, filler, "filler"):
        cache.store(request, completion)
    for request in make_requests(size, keys, "warm") + make_requests(size, keys, "cold"):
        cache.store(request, completion)
    cache.close()
    medians = []
    for _ in range(processes):
        result = run_child("cold", path, size, keys)
        assert result["file_hits"] == 2 * keys, result
        medians.append(result["median_us"])
    return medians


async def loop_lag(cache: ResponseCache | None, requests: list[Request], duration: float = 0.1):
    """Lateness (s) of each tick of a 1 ms ticker while answers are stored one by one (or while idle)."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker():
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append(time.perf_counter() - start - 0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    lateness.clear()
    if cache is None:
        await asyncio.sleep(duration)
    else:
        completion = make_completion()
        for request in requests:
            cache.store(request, completion)  # as answers arrive: one per loop iteration
            await asyncio.sleep(0)
        await asyncio.get_running_loop().run_in_executor(None, cache.flush)
    done.set()
    await task
    return lateness


def lag_child(path: str, stores: int, runs: int) -> None:
    """In a fresh process (a kernel-sized heap, not one holding both peers): lag storing, then idle.

    Ticks are pooled over ``runs`` runs, each storing ``stores`` answers into
    a new cache file, so the p99 rests on more than a couple of samples.
    """
    busy: list[float] = []
    idle: list[float] = []
    for run in range(runs):
        cache = open_cache(Path(f"{path}-{run}"))
        requests = make_requests(SIZES["10 KB"], stores, f"lag{run}")
        start = time.perf_counter()
        busy += asyncio.run(loop_lag(cache, requests))
        elapsed = time.perf_counter() - start
        cache.close()
        idle += asyncio.run(loop_lag(None, [], duration=elapsed))

    def cuts(samples: list[float]) -> dict:
        q = statistics.quantiles(samples, n=100)
        return {"p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3, "ticks": len(samples)}

    print(json.dumps({"idle": cuts(idle), "busy": cuts(busy)}))


def run_child(*args: object) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


# -- report --------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(value: float | None, base: float) -> str:
    return "n/a" if value is None else f"{value / base:.2f}×"


def hash_speed() -> str:
    data = os.urandom(10_000)
    out = []
    for name in ("sha256", "blake2b"):
        fn = getattr(hashlib, name)
        start = time.perf_counter()
        for _ in range(2000):
            fn(data).digest()
        out.append(f"{name} {10_000 * 2000 / (time.perf_counter() - start) / 1e6:.0f} MB/s")
    return ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000, help="distinct requests per size")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--stores", type=int, default=1000, help="answers stored during a loop-lag run")
    parser.add_argument("--lag-runs", type=int, default=5, help="loop-lag runs pooled for the percentiles")
    parser.add_argument("--cold-processes", type=int, default=5, help="new processes timing cold file hits")
    parser.add_argument("--big-file", type=int, default=100_000, help="rows in the big file a cold hit is timed in")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, *numbers = args.child
        {"cold": cold_child, "lag": lag_child}[kind](path, *map(int, numbers))
        return

    rows = ["floor", "memory", "cold", "langchain", "litellm", "execute_agent"]
    labels = {
        "floor": "floor: `json.dumps(sort_keys)` + sha256 + `TTLCache.get`",
        "memory": "`ResponseCache.lookup`, memory hit",
        "cold": "`ResponseCache.lookup`, cold from file (new process)",
        "langchain": "LangChain `InMemoryCache.lookup` + key",
        "litellm": "litellm `Cache.get_cache(**kwargs)` (local)",
        "execute_agent": "`execute_agent`, memory hit",
    }
    results: dict[str, dict[str, float | None]] = {name: {} for name in rows}
    cold_runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for label, size in SIZES.items():
            cold_runs[label] = cold_file_hit(directory, size, args.keys, args.cold_processes)
            results["cold"][label] = statistics.median(cold_runs[label])
        big = cold_file_hit(directory, SIZES["1 KB"], args.keys, args.cold_processes, filler=args.big_file)
        small_file, big_file = results["cold"]["1 KB"], statistics.median(big)
        for label, size in SIZES.items():
            requests = make_requests(size, args.keys, "hot")
            contenders = {
                "floor": floor(requests),
                "memory": response_cache(requests, directory / f"hot-{size}.sqlite"),
                "langchain": langchain(requests),
                "litellm": litellm(requests),
                "execute_agent": execute_agent(requests, directory / f"agent-{size}.sqlite"),
            }
            for name, value in interleaved_medians(contenders, requests, args.rounds).items():
                results[name][label] = value

        lag = run_child("lag", directory / "lag.sqlite", args.stores, args.lag_runs)
        idle, busy = lag["idle"], lag["busy"]

    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {hash_speed()}; "
        f"{args.keys} keys × {args.rounds} rounds\n"
    )
    print("| lookup (median µs) | 1 KB | × floor | 10 KB | × floor |")
    print("|---|---:|---:|---:|---:|")
    for name in rows:
        cells = []
        for label in SIZES:
            value = results[name].get(label)
            cells += [fmt(value), ratio(value, results["floor"][label])]
        print(f"| {labels[name]} | " + " | ".join(cells) + " |")
    print()
    print(f"| event-loop lag, 1 ms ticker, {args.lag_runs} runs pooled (ms) | p50 | p99 | ticks |")
    print("|---|---:|---:|---:|")
    print(f"| idle | {idle['p50_ms']:.3f} | {idle['p99_ms']:.3f} | {idle['ticks']} |")
    print(
        f"| storing {args.stores:,} answers (10 KB prompts) | {busy['p50_ms']:.3f} | {busy['p99_ms']:.3f} "
        f"| {busy['ticks']} |"
    )
    print()

    memory, cold = results["memory"], results["cold"]
    checks = [
        ("memory hit ≤ 1.3× floor", all(memory[s] <= 1.3 * results["floor"][s] for s in SIZES)),
        (
            "memory hit faster than LangChain and litellm",
            all(results[p][s] is None or memory[s] < results[p][s] for p in ("langchain", "litellm") for s in SIZES),
        ),
        ("cold file hit ≤ 60 µs at 10 KB", cold["10 KB"] <= 60),
        (
            f"cold file hit in a {args.big_file + 2 * args.keys:,}-row file ≤ 1.5× a {2 * args.keys:,}-row one",
            big_file <= 1.5 * small_file,
        ),
        ("loop lag p99 ≤ 5 ms", busy["p99_ms"] <= 5),
    ]
    for text, ok in checks:
        print(f"- {text}: {'met' if ok else 'NOT met'}")
    print(
        "- cold file hit, per-process medians: "
        + "; ".join(f"{s} " + ", ".join(f"{v:.0f}" for v in sorted(cold_runs[s])) + " µs" for s in SIZES)
    )
    print(
        f"- cold file hit at 1 KB: {small_file:.1f} µs in a {2 * args.keys:,}-row file, {big_file:.1f} µs in a "
        f"{args.big_file + 2 * args.keys:,}-row file ({big_file / small_file:.2f}×)"
    )
    print(
        "- file tier on top of a memory hit (cold − memory): "
        + ", ".join(f"{s} {cold[s] - memory[s]:.1f} µs" for s in SIZES)
    )


if __name__ == "__main__":
    main()
