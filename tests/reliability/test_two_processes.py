"""Two processes storing answers in one cache file at the same moment lose none and never see a lock error."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claude_force_nb import ResponseCache
from claude_force_nb._request import Completion, Request

PER_PROCESS = 500
NAMES = ("first", "second")
ORIGIN = "https://api.anthropic.com"

# Each writer says it is ready and waits for a line on stdin, so that both start storing together.
WRITER = """
    import sys
    from claude_force_nb import ResponseCache
    from test_two_processes import answer

    name, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with ResponseCache(path) as cache:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            cache.store(*answer(name, i))
            if i % 2:
                cache.flush()  # many small transactions, each contending for the file's write lock
        print(cache.stats().dropped, flush=True)
"""

pytestmark = pytest.mark.timeout(120)


def answer(name: str, i: int) -> tuple[Request, Completion]:
    """The request and the answer writer ``name`` stores as its ``i``th."""
    request = Request.for_task(f"{name} task {i}", model="claude-sonnet-4-6", max_tokens=100)
    message = {
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": f"answer to {name} task {i}"}],
        "usage": {"input_tokens": 10, "output_tokens": 20},
    }
    return request, Completion(message, 0.1, f"req_{name}_{i}", ORIGIN)


def test_two_processes_writing_at_once_lose_nothing(tmp_path, monkeypatch, figures):
    monkeypatch.setenv("CLAUDE_CACHE_SECRET", "two-process-secret")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the writers import answer() from here
    db = tmp_path / "cache.sqlite"
    ResponseCache(db).close()  # the schema exists first, as in a cache already in use
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), name, str(db), str(PER_PROCESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in NAMES
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=90) for proc in procs]
    elapsed = time.perf_counter() - start

    dropped = [int(out.strip() or -1) for out, _ in outputs]
    errors = [err for _, err in outputs]
    with ResponseCache(db) as cache:
        report = cache.verify()
        keys = [cache.key(answer(name, i)[0]) for name in NAMES for i in range(PER_PROCESS)]
        found = sum(cache.lookup(key, ORIGIN, peek=True) is not None for key in keys)
    figures(f"{len(procs)} processes x {PER_PROCESS} answers, a commit every 2, at once: {elapsed:.2f} s")
    figures(f"rows verified: {report.ok} of {report.total}; found by key: {found}; dropped per process: {dropped}")
    figures(f"stderr: {['clean' if not err else err.splitlines()[-1] for err in errors]}")
    assert [proc.returncode for proc in procs] == [0, 0], errors
    for err in errors:
        assert "locked" not in err.lower() and "could not write" not in err.lower(), err
        assert err == "", err
    assert dropped == [0, 0]
    assert (report.total, report.ok, report.bad) == (2 * PER_PROCESS, 2 * PER_PROCESS, ())
    assert found == 2 * PER_PROCESS
