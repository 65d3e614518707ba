"""Single-flight across kernels through the team database: real processes, a real server, one killed holder."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg

from claude_force_nb import AsyncAgentOrchestrator

# A kernel of its own: its own cache file, the shared database, the test's server; it says "ready", waits
# for a line on stdin so every process starts at once, then prints its answers as JSON.
KERNEL = textwrap.dedent(
    """
    import asyncio, json, sys
    from claude_force_nb import AsyncAgentOrchestrator

    async def main(path, url, base, count, timeout):
        async with AsyncAgentOrchestrator(
            api_key="k", base_url=base, cache_path=path, cache_url=url, max_retries=0, timeout_seconds=timeout
        ) as o:
            tasks = [("explainer", f"Shared question {i}") for i in range(count)]
            print("ready", flush=True)
            sys.stdin.readline()
            results = await o.execute_multiple(tasks)
            print(json.dumps([[r.success, r.output, r.source] for r in results]), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    """
)


def kernels(tmp_path, url, server, n, count, timeout=120.0):
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "CLAUDE_CACHE_SECRET": "team-secret-shared-by-all"}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", KERNEL, str(tmp_path / f"k{i}.sqlite"), url, server.url, str(count), str(timeout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    for process in started:
        assert process.stdout.readline().strip() == "ready"
    return started


def answers(process):
    out, _ = process.communicate("go\n", timeout=100)
    return json.loads(out.strip().splitlines()[-1])


def sent(server):
    return [r for r in server.log if r.path == "/v1/messages"]


def test_two_kernels_asking_the_same_at_once_send_it_once(tmp_path, team_url, server, monkeypatch):
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "team-secret-shared-by-all")
    server.latency = 0.5

    async def both():
        one, two = (
            AsyncAgentOrchestrator(
                api_key="k", base_url=server.url, cache_path=tmp_path / f"{n}.sqlite", cache_url=team_url
            )
            for n in ("one", "two")
        )
        results = await asyncio.gather(
            one.execute_agent("explainer", "the same question"), two.execute_agent("explainer", "the same question")
        )
        for o in (one, two):
            await o.close()
        return results

    first, second = asyncio.run(both())
    assert first.output == second.output and first.success and second.success
    assert sorted([first.source, second.source]) == ["api", "shared"]
    assert len(sent(server)) == 1


def test_eight_processes_sweeping_the_same_prompts_send_each_once(tmp_path, team_url, server):
    server.latency = 0.3
    started = kernels(tmp_path, team_url, server, 8, 25)
    results = [answers(process) for process in started]
    assert len(sent(server)) == 25
    outputs = {tuple(output for _, output, _ in result) for result in results}
    assert len(outputs) == 1 and all(success for result in results for success, _, _ in result)
    assert sum(source == "api" for result in results for _, _, source in result) == 25


def test_a_waiter_takes_over_at_once_when_the_holder_dies(tmp_path, team_url, server, monkeypatch):
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "team-secret-shared-by-all")
    server.latency = 30.0  # the holder is still waiting for its answer when it is killed
    (holder,) = kernels(tmp_path, team_url, server, 1, 1, timeout=600.0)  # its claim would hold for ten minutes
    holder.stdin.write("go\n")
    holder.stdin.flush()
    with psycopg.connect(team_url, autocommit=True) as conn:
        for _ in range(400):
            made = conn.execute("SELECT to_regclass('claude_force_nb_flights') IS NOT NULL").fetchone()[0]
            if made and conn.execute("SELECT count(*) FROM claude_force_nb_flights").fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the holder never claimed the request")

    async def wait_then_kill():
        waiter = AsyncAgentOrchestrator(
            api_key="k", base_url=server.url, cache_path=tmp_path / "waiter.sqlite", cache_url=team_url
        )
        asking = asyncio.ensure_future(waiter.execute_agent("explainer", "Shared question 0"))
        await asyncio.sleep(1.0)
        assert not asking.done()  # it waits for the holder, which is alive
        server.latency = 0.0
        os.kill(holder.pid, signal.SIGKILL)
        result = await asking
        await waiter.close()
        return result

    result = asyncio.run(wait_then_kill())
    holder.wait(10)
    # The waiter sent it itself (the dead holder's request is still being answered, to nobody).
    assert result.success and result.source == "api"
    assert result.request_id in {r.request_id for r in sent(server)}


def test_a_refresh_sends_again_whatever_the_team_cache_holds(tmp_path, team_url, server, monkeypatch):
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "team-secret-shared-by-all")

    async def twice():
        o = AsyncAgentOrchestrator(
            api_key="k", base_url=server.url, cache_path=tmp_path / "r.sqlite", cache_url=team_url
        )
        first = await o.execute_agent("explainer", "refresh me")
        again = await o.execute_agent("explainer", "refresh me", cache_mode="refresh")
        await o.close()
        return first, again

    first, again = asyncio.run(twice())
    assert (first.source, again.source) == ("api", "api")
    assert len(sent(server)) == 2
