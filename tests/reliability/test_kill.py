"""SIGKILL mid-sweep: the cache file stays sound and keeps every answer returned more than WINDOW seconds before."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from claude_force_nb import ResponseCache

# The documented bound: an answer handed back this long before the process dies is in the file.
# Answers are written behind, on the writer thread, after a linger of a few milliseconds.
WINDOW = 1.0
TOTAL = 20_000  # far more than a run gets through before it is killed

# The child prints "<monotonic time> <cache key>" as each answer is handed back to it. CLOCK_MONOTONIC
# is one clock for every process on the machine, so its times compare with the parent's.
SWEEP = """
    import asyncio, sys, time
    from claude_force_nb import AsyncAgentOrchestrator

    async def main(path, total):
        async with AsyncAgentOrchestrator(max_concurrent=4, cache_path=path) as orchestrator:
            calls = [orchestrator.prepare("explainer", f"Kill test task {i}") for i in range(total)]
            print("origin", orchestrator.backend.origin, flush=True)

            async def one(call):
                result = await orchestrator.run(call)
                if result.success:
                    print(f"{time.monotonic():.6f} {call.key}", flush=True)

            await asyncio.gather(*map(one, calls))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

pytestmark = pytest.mark.timeout(120)


def sweep_and_kill(script, db, stderr, after):
    """Run the sweep in a child and SIGKILL it once ``after`` answers are back; (origin, [(time, key)], kill time)."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(TOTAL)], stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["origin"], f"the sweep did not start: {stderr.name}"
        reported = []
        for line in proc.stdout:
            stamp, key = line.split()
            reported.append((float(stamp), key))
            # Late enough that some answers are older than the window, whatever the machine's pace.
            if len(reported) >= after and reported[-1][0] - reported[0][0] > 1.5 * WINDOW:
                killed_at = time.monotonic()
                os.kill(proc.pid, signal.SIGKILL)
                break
        # Lines still in the pipe were written before the kill.
        reported += [(float(stamp), key) for stamp, key in map(str.split, proc.stdout.read().splitlines())]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"the sweep ended before it was killed: {stderr.name}"
    return first[1], reported, killed_at


@pytest.mark.parametrize("after", [400, 800])
def test_a_killed_sweep_leaves_a_sound_file_with_every_answer_older_than_the_window(
    server, tmp_path, monkeypatch, figures, after
):
    server.latency = 0.01
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "kill-test-secret")
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(SWEEP))
    db = tmp_path / "cache.sqlite"
    with open(tmp_path / "stderr.txt", "w") as stderr:
        origin, reported, killed_at = sweep_and_kill(script, db, stderr, after)
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with ResponseCache(db) as cache:
        present = {key: cache.lookup(key, origin, peek=True) is not None for _, key in reported}
        report = cache.verify()
    assert not report.bad  # no row was torn by the kill

    ages = [(killed_at - stamp, key) for stamp, key in reported]
    old = [key for age, key in ages if age > WINDOW]
    kept = [age for age, key in ages if present[key]]
    lost = [age for age, key in ages if not present[key]]
    duration = max(age for age, _ in ages) - min(age for age, _ in ages)
    figures(f"killed after {len(reported)} answers reported over {duration:.2f} s; {len(old)} older than {WINDOW:g} s")
    figures(f"in the file: {len(kept)}/{len(reported)} reported answers ({len(kept) / len(reported):.1%})")
    newest_kept = f"{min(kept) * 1000:.1f} ms" if kept else "none"
    oldest_lost = f"{max(lost) * 1000:.1f} ms" if lost else "none lost"
    figures(f"newest answer kept: reported {newest_kept} before the kill; oldest lost: {oldest_lost} before it")
    assert old, "the sweep was killed before any answer was older than the window; kill later"
    assert all(present[key] for key in old), [key for key in old if not present[key]]
