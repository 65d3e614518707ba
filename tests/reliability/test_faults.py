"""A 500-call sweep through injected faults: every call comes back, in order, with its own answer or exception."""

import time
from collections import Counter

import anthropic
import pytest

from claude_force_nb import AgentResult, AsyncAgentOrchestrator, CallError, CallTimeoutError

CALLS = 500
CONCURRENCY = 50
# One request in five fails, spread evenly over the kinds the server can inject into a plain request.
RATES = {"429": 0.04, "529": 0.04, "500": 0.04, "slow": 0.04, "drop": 0.04}
# A random "slow" fault pauses 3 s (the server's default), so such a call times out; 2 s still leaves
# room for the SDK's two backoffs (0.5 s, then 1 s) after a fault that sends no retry-after.
TIMEOUT = 2.0

pytestmark = pytest.mark.timeout(120)


def task(i: int) -> str:
    return f"Sweep task {i:03d}"


def outcome(result: AgentResult) -> str:
    """What a result says happened: "ok", "timeout", "http <status>" or "connection"; anything else is a bug."""
    if result.success:
        return "ok"
    error = result.error
    assert isinstance(error, CallError), repr(error)
    cause = error.__cause__
    if isinstance(error, CallTimeoutError):
        # The deadline ran out around the SDK (asyncio's TimeoutError) or inside it (the SDK's own).
        assert isinstance(cause, (TimeoutError, anthropic.APITimeoutError)), repr(cause)
        return "timeout"
    if isinstance(cause, anthropic.APIStatusError):
        assert error.status == cause.status_code
        return f"http {cause.status_code}"
    assert isinstance(cause, anthropic.APIConnectionError), repr(cause)
    return "connection"


async def test_a_faulty_sweep_accounts_for_every_call(server, tmp_path, figures):
    server.faults.rates = RATES
    orchestrator = AsyncAgentOrchestrator(
        api_key="test-key",
        base_url=server.url,
        max_concurrent=CONCURRENCY,
        timeout_seconds=TIMEOUT,
        cache_path=tmp_path / "cache.sqlite",
    )
    async with orchestrator:
        start = time.perf_counter()
        results = await orchestrator.execute_multiple(
            [("explainer", task(i), {"item": i}) for i in range(CALLS)],
        )
        elapsed = time.perf_counter() - start
        # A deadline can cut an attempt off while its body is on the way: the server logs it with no body.
        logged = [r for r in server.log if r.path == "/v1/messages"]
        sent = [r for r in logged if r.body is not None]

        assert len(results) == CALLS
        outcomes = Counter()
        for i, result in enumerate(results):
            assert (result.item, result.task, result.agent_name) == (i, task(i), "explainer")
            kind = outcome(result)
            outcomes[kind] += 1
            if result.success:
                # The synthetic answer quotes its task: this answer is this call's, not a neighbour's.
                assert f'"{task(i)}"' in result.output
        assert outcomes["ok"] > CALLS * 0.8  # a sanity bound on the seeded faults, not a claim about them

        # Failures are never cached: without faults, a second pass sends exactly the calls that failed.
        # Counted by the client: an attempt of the first pass cut off by its deadline may still reach
        # the server after the reset.
        server.reset()
        again = await orchestrator.execute_multiple([("explainer", task(i)) for i in range(CALLS)])
        assert all(r.success for r in again)
        resent = [task(i) for i, r in enumerate(again) if not r.cached]
        assert resent == [task(i) for i, r in enumerate(results) if not r.success]

    per_task = Counter(r.body["messages"][0]["content"] for r in sent)
    injected = Counter(r.fault for r in sent if r.fault)
    figures(
        f"{CALLS} calls, {CONCURRENCY} at a time, {sum(RATES.values()):.0%} of requests faulted, timeout {TIMEOUT:g} s"
    )
    figures(f"outcomes: {dict(sorted(outcomes.items()))}")
    figures(
        f"requests seen by the server: {len(sent)}, and {len(logged) - len(sent)} cut off before their body; "
        f"retries: {len(sent) - len(per_task)}"
    )
    figures(f"faults injected: {dict(sorted(injected.items()))}")
    figures(f"wall time: {elapsed:.2f} s; second pass resent {len(resent)} calls")
