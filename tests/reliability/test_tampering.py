"""Every kind of tampering with the cache file: never served, never the end of the session."""

import sqlite3
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from claude_force_nb import AsyncAgentOrchestrator

SECRET = "tamper-test-secret"
TASKS = [f"Tamper test task {i}" for i in range(40)]
VICTIM, PARTNER, UNCACHED = TASKS[0], TASKS[1], TASKS[-1]  # the last is never cached before the tampering
PAGE = 4096  # SQLite's default page size


@dataclass(frozen=True)
class File:
    """The cache file to tamper with, and how the first session keyed its answers."""

    path: Path
    keys: dict[str, str]  # task -> cache key

    def sql(self, statement: str, *params: object) -> None:
        with sqlite3.connect(self.path, isolation_level=None) as conn:
            conn.execute(statement, params)


def change_bytes(file: File) -> set[str]:
    # Same length, other bytes: only the signature can tell.
    file.sql(
        "UPDATE responses SET response = replace(response, '[synthetic]', '[verified!]') WHERE key = ?",
        file.keys[VICTIM],
    )
    return {VICTIM}


def swap_responses(file: File) -> set[str]:
    with sqlite3.connect(file.path, isolation_level=None) as conn:
        first, second = (
            conn.execute("SELECT response FROM responses WHERE key = ?", (file.keys[task],)).fetchone()[0]
            for task in (VICTIM, PARTNER)
        )
        conn.execute("UPDATE responses SET response = ? WHERE key = ?", (second, file.keys[VICTIM]))
        conn.execute("UPDATE responses SET response = ? WHERE key = ?", (first, file.keys[PARTNER]))
    return {VICTIM, PARTNER}


def change_expiry(file: File) -> set[str]:
    file.sql("UPDATE responses SET expires = expires + 86400 WHERE key = ?", file.keys[VICTIM])
    return {VICTIM}


def copy_under_another_key(file: File) -> set[str]:
    file.sql(
        "INSERT INTO responses SELECT ?, origin, synthetic, agent, model, task, response, request_id, input_tokens,"
        " output_tokens, latency, created, expires, key_id, signature FROM responses WHERE key = ?",
        file.keys[UNCACHED],
        file.keys[VICTIM],
    )
    return {UNCACHED}


def sign_with_another_secret(file: File) -> set[str]:
    return set(TASKS[:-1])  # the first session signed every row with another secret: see the test


def truncate(file: File) -> set[str]:
    size = file.path.stat().st_size
    with open(file.path, "r+b") as f:
        f.truncate(size // 2)
    return set()


def garbage(file: File) -> set[str]:
    size = file.path.stat().st_size
    file.path.write_bytes((b"not a database, just garbage " * (size // 29 + 1))[:size])
    return set()


def zero_a_page(file: File) -> set[str]:
    size = file.path.stat().st_size
    with open(file.path, "r+b") as f:
        f.seek((size // PAGE // 2) * PAGE)
        f.write(b"\x00" * PAGE)
    assert file.path.stat().st_size == size
    return set()


# Each returns the tasks whose rows it tampered with; file-level damage names none, since every row is suspect.
TAMPERINGS: dict[str, Callable[[File], set[str]]] = {
    "changed bytes": change_bytes,
    "swapped responses": swap_responses,
    "changed expiry": change_expiry,
    "copied under another key": copy_under_another_key,
    "another secret": sign_with_another_secret,
    "truncated file": truncate,
    "garbage file": garbage,
    "zeroed page": zero_a_page,
}


@pytest.fixture
async def session(server, tmp_path, monkeypatch):
    """``session(secret)``: a new orchestrator on one cache file, as a new kernel would make it."""
    made = []

    def make(secret=SECRET):
        monkeypatch.setenv("CLAUDE_CACHE_SECRET", secret)
        orchestrator = AsyncAgentOrchestrator(api_key="test-key", base_url=server.url, cache_path=tmp_path / "c.sqlite")
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        await orchestrator.close()


# What each warning says, in a word or three, for the table.
GISTS = {
    "failed its signature check": "row rejected",
    "signed with a secret this kernel does not hold": "foreign rows kept",
    "was damaged": "file set aside",
    "could not be rebuilt": "file not rebuilt",
    "Could not write": "writes dropped",
}


def gist(message: str) -> str:
    return next((word for phrase, word in GISTS.items() if phrase in message), message[:40])


def sent(server) -> list[str]:
    return [r.body["messages"][0]["content"] for r in server.log if r.path == "/v1/messages"]


async def run(orchestrator, tasks):
    results = await orchestrator.execute_multiple([("explainer", task) for task in tasks])
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    return dict(zip(tasks, results, strict=True))


@pytest.fixture(scope="module")
def table(module_figures):
    # served: tampered rows served, of those tampered with; from file: answers the next session took from
    # the file (each checked genuine); refetched: requests it sent; recovered: those are in the file again.
    module_figures(f"{'tampering':<26}{'served':<8}{'from file':<11}{'refetched':<10}{'recovered':<11}warnings")
    return module_figures


@pytest.mark.parametrize("kind", list(TAMPERINGS))
async def test_tampering_is_never_served_and_never_ends_the_session(kind, server, session, tmp_path, table):
    # The first session caches every task but one; it learns that one's answer without caching it.
    first = session("someone else's secret" if kind == "another secret" else SECRET)
    genuine = {task: r.output for task, r in (await run(first, TASKS[:-1])).items()}
    genuine[UNCACHED] = (await first.execute_agent("explainer", UNCACHED, cache_mode="no-cache")).output
    file = File(tmp_path / "c.sqlite", {task: first.prepare("explainer", task).key for task in TASKS})
    await first.close()  # flushed and checkpointed: the rows are in the file itself

    victims = TAMPERINGS[kind](file)

    server.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = session()
        answers = await run(second, TASKS)
        # The session goes on: the same calls again, and a new one.
        again = await run(second, [*TASKS, "A task after the tampering"])
    refetched = set(sent(server))
    served = sorted(task for task in victims if answers[task].cached)
    from_file = sum(r.source == "file" for r in answers.values())
    assert {task: r.output for task, r in answers.items()} == genuine
    assert all(r.cached for task, r in again.items() if task in TASKS)
    await second.close()

    # Every answer of the second session is in the file for the next one: those it fetched again, and
    # those it took from a damaged file before it noticed the damage (from what could still be read
    # of that file, or from memory).
    server.reset()
    third = await run(session(), TASKS)
    recovered = all(third[task].source == "file" for task in TASKS)
    assert {task: r.output for task, r in third.items()} == genuine

    said = Counter(gist(str(w.message)) for w in caught)
    table(f"{kind:<26}{len(served)}/{len(victims):<6}{from_file:<11}{len(refetched):<10}{recovered!s:<11}{dict(said)}")
    assert not served, f"{kind}: tampered rows were served for {served}"
    assert said, f"{kind}: nobody was told"
    assert victims <= refetched
    assert recovered and not refetched & set(sent(server))
