"""Evaluating a sweep: a graded sweep under rate limits, rescoring, a 10,000-item table, and the dry run's estimate.

Run: python bench/evaluation.py [--items 50] [--samples 3] [--ideal 30] [--table-items 10000]

1. **A graded sweep under the local server's rate limits**: 2 agents × 3
   models × ``--items`` items × ``--samples`` samples, each answer graded.
   The server enforces requests and input tokens per minute (a minute scaled
   to ten seconds), sized so that the sweep's requests need about ``--ideal``
   seconds; the limit-bound ideal is worked out afterwards from the requests
   the server admitted. Printed: wall time against that ideal, failed calls,
   requests by kind, and the process's peak memory.
2. **Re-scoring those answers**: with a new check (requests sent: must be 0),
   and with a new rubric (grader requests only: one per distinct answer).
3. **A 10,000-item sweep's table** as the notebook stores it: the size of its
   output against the same table with every row, as every sweep wrote it before.
4. **The dry run**: on a second sweep of the same shape, calls, grader calls
   and estimated cost against what the sweep then spends (after a small pilot,
   so the estimate has this session's answers to go by, as a notebook would),
   with one sample and with ``--samples``. The estimate counts a grade per
   answer; offline, the samples of one request are the same answer, graded
   once, so there the sweep spends less than with Claude.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time

from claude_force_nb import AsyncAgentOrchestrator, Call, Results, _render
from claude_force_nb.simulator import LocalServer, RateLimits

MINUTE = 10.0
LATENCY = 0.2
AGENTS = ("explainer", "python-expert")
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")
RUBRIC = "The answer names the first step, tests the riskiest assumption and gives a worked example."
NEW_RUBRIC = "The answer says what to check first and keeps the explanation honest and easy to review."


def sweep(items: int, start: int = 0) -> list[Call]:
    return [
        Call(agent, f"Question {i}: how would you speed up a slow report query?", model=model, item=i)
        for agent in AGENTS
        for model in MODELS
        for i in range(start, start + items)
    ]


def mentions_question(answer: str, item: int) -> bool:
    return f"Question {item}" in answer


def short_enough(answer: str, item: int) -> bool:
    return len(answer) < 1200


def limits_for(server: LocalServer, args: argparse.Namespace, calls: int) -> RateLimits:
    """Limits under which the answers and their grades need about ``--ideal`` seconds, input tokens binding.

    Sized from one answer's prompt and one grade's (with an answer of typical length); the ideal printed is
    worked out afterwards from the requests the server admitted.
    """
    from claude_force_nb import AgentResult, Grade
    from claude_force_nb.simulator._answers import count_input_tokens

    orchestrator = AsyncAgentOrchestrator(base_url=server.url, api_key="bench", enable_cache=False)
    call = sweep(1)[0]
    answer = count_input_tokens(orchestrator.prepare(call.agent, call.task).request.to_kwargs())
    grade = Grade(RUBRIC)
    typical = AgentResult(call.agent, True, output="word " * 90, task=call.task)
    system = grade.system(orchestrator.agents.get("grader").system_prompt)
    graded = count_input_tokens({"system": system, "messages": [{"role": "user", "content": grade.task(typical)}]})
    requests = calls + calls // args.samples  # offline, the samples of one request are one answer, graded once
    tokens = calls * answer + calls // args.samples * graded
    bucket = round(tokens / (1 + args.ideal / MINUTE))
    return RateLimits(
        requests=2 * round(requests / (1 + args.ideal / MINUTE)),  # room to spare: tokens are what binds
        input_tokens=bucket,
        output_tokens=10_000_000,
        minute=MINUTE,
    )


def kinds(server: LocalServer) -> tuple[int, int]:
    sent = [r for r in server.log if r.path == "/v1/messages" and r.status == 200]
    graders = sum("<rubric>" in str(r.body.get("system")) for r in sent)
    return len(sent) - graders, graders


def ideal_of(server: LocalServer, limits: RateLimits) -> float:
    """The least time the admitted requests need from buckets that start full and refill at the limit."""
    from claude_force_nb.simulator._answers import count_input_tokens

    sent = [r for r in server.log if r.path == "/v1/messages" and r.status == 200]
    tokens = sum(count_input_tokens(r.body) for r in sent)
    by_tokens = (tokens - limits.input_tokens) / (limits.input_tokens / MINUTE)
    by_requests = (len(sent) - limits.requests) / (limits.requests / MINUTE)
    return max(by_tokens, by_requests, 0.0)


async def graded_sweep(server: LocalServer, args: argparse.Namespace, home: str) -> Results:
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="bench", cache_path=f"{home}/cache.sqlite", max_concurrent=50, timeout_seconds=600
    ) as orchestrator:
        start = time.perf_counter()
        run = await orchestrator.evaluate(
            sweep(args.items), samples=args.samples, grade=RUBRIC, checks=[mentions_question]
        )
        elapsed = time.perf_counter() - start
        answers, grades = kinds(server)
        ideal = ideal_of(server, server.rate_limits)
        failed = sum(not r.success for r in run) + sum(s.error is not None for r in run for s in r.scores)
        print(
            f"1. graded sweep: {len(run):,} answers ({answers:,} requests) and {grades:,} grader requests "
            f"(distinct answers: the local server answers samples of one request alike)\n"
            f"   wall {elapsed:.1f} s, limit-bound ideal {ideal:.1f} s: {elapsed / ideal:.2f}× ideal "
            f"({'met' if elapsed <= 1.15 * ideal else 'NOT met'}: ≤ 1.15×); failed calls or scores: {failed}"
        )
        server.rate_limits = None
        before = len(server.log)
        start = time.perf_counter()
        checked = await run.rescore(checks=[short_enough])
        check_time = time.perf_counter() - start
        print(
            f"2. rescoring {len(checked):,} answers with a new check: {len(server.log) - before} requests, "
            f"{check_time * 1e3:.0f} ms"
        )
        answered, graded = kinds(server)
        start = time.perf_counter()
        await run.rescore(grade=NEW_RUBRIC)
        rubric_time = time.perf_counter() - start
        answered_after, graded_after = kinds(server)
        distinct = len({r.output for r in run if r.success})
        print(
            f"   with a new rubric: {graded_after - graded:,} grader requests for {distinct:,} distinct answers, "
            f"{answered_after - answered} generation requests, {rubric_time:.1f} s"
        )
    return run


async def table_size(items: int, home: str) -> None:
    os.environ["CLAUDE_FORCE_NB_SIMULATOR_LATENCY"] = "0"
    with LocalServer(latency=0, log_limit=10) as server:
        async with AsyncAgentOrchestrator(
            base_url=server.url, api_key="bench", cache_path=f"{home}/table.sqlite", max_concurrent=100
        ) as orchestrator:
            calls = [Call("explainer", f"Summarise note {i} in two sentences.", item=f"note {i}") for i in range(items)]
            results = Results(await orchestrator.execute_multiple(calls))
    shown = len(json.dumps(results._repr_mimebundle_()))
    every_row, _render.MAX_ROWS = _render.MAX_ROWS, 10**9
    try:
        whole = len(json.dumps(results._repr_mimebundle_()))
    finally:
        _render.MAX_ROWS = every_row
    print(
        f"3. a {items:,}-item sweep's table in the notebook: {shown / 1e3:,.1f} KB "
        f"({'met' if shown < 500e3 else 'NOT met'}: < 500 KB); every row, as before: {whole / 1e6:,.1f} MB"
    )


async def dry_run(server: LocalServer, args: argparse.Namespace, home: str, samples: int) -> None:
    async with AsyncAgentOrchestrator(
        base_url=server.url, api_key="bench", cache_path=f"{home}/dry-{samples}.sqlite", max_concurrent=50
    ) as orchestrator:
        await orchestrator.evaluate(sweep(2, start=1000), grade=RUBRIC)  # the pilot: earlier answers to go by
        spent_before = orchestrator.spent().cost
        batch = orchestrator.batch(sweep(args.items), samples=samples, grade=RUBRIC)
        estimate = await orchestrator.estimate(batch.calls, scoring=batch.scoring)
        await batch.wait()
        spent = orchestrator.spent().cost - spent_before
        graded = orchestrator.spent().calls - len(batch.calls) - 2 * len(sweep(2))
    grading = estimate.grading
    assert grading is not None and estimate.cost is not None
    off = estimate.cost / spent - 1
    print(
        f"   --samples {samples}: {estimate.calls:,} calls and {grading.calls:,} grader calls estimated "
        f"({graded:,} grader calls sent), ${estimate.cost:.4f} against ${spent:.4f} spent: {off:+.1%} "
        f"({'met' if abs(off) <= 0.10 else 'NOT met'}: within 10 %)"
    )


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--ideal", type=float, default=30.0)
    parser.add_argument("--table-items", type=int, default=10_000)
    args = parser.parse_args()
    os.environ["NO_PROXY"] = ",".join(filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1")))
    os.environ.setdefault("CLAUDE_CACHE_SECRET", "bench-secret-bench-secret-bench-secret")
    home = tempfile.mkdtemp(prefix="cfnb-bench-")
    calls = len(AGENTS) * len(MODELS) * args.items * args.samples
    with LocalServer(latency=LATENCY, log_limit=20 * calls) as server:
        server.rate_limits = limits_for(server, args, calls)
        shape = f"{len(AGENTS)} agents × {len(MODELS)} models × {args.items} items × {args.samples} samples"
        print(f"{calls:,} answers: {shape}\n")
        asyncio.run(graded_sweep(server, args, home))
        print(f"   peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    asyncio.run(table_size(args.table_items, home))
    print("4. the dry run's estimate against what the sweep then spends (after a pilot of 2 items):")
    for samples in sorted({1, args.samples}):
        with LocalServer(latency=0.01, log_limit=20 * calls) as server:
            asyncio.run(dry_run(server, args, home, samples))


if __name__ == "__main__":
    main()
