import gc
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

from claude_force_nb._cache import store as store_module
from claude_force_nb._cache.database import SCHEMA_VERSION, connect
from claude_force_nb._cache.secret import Signer, load_signer
from claude_force_nb._cache.stats import StatsCounter
from claude_force_nb._cache.store import Row, Store
from claude_force_nb._errors import CacheError, CacheFileError, CacheIntegrityWarning
from claude_force_nb._request import Completion

SECRET = b"store-test-secret"
MODEL = "claude-sonnet-4-6"
ORIGIN = "https://api.anthropic.com"


def message(text="an answer", input_tokens=10, output_tokens=20):
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def row(
    key,
    text=None,
    *,
    now=1_800_000_000.0,
    ttl=3600.0,
    latency=0.5,
    task="Write a haiku about rain",
    origin=ORIGIN,
    synthetic=False,
):
    completion = Completion(message(text or f"answer for {key}"), latency, f"req_{key}", origin, synthetic)
    return Row(key, completion, now, now + ttl, "poet", MODEL, task)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "cache.sqlite"


@pytest.fixture
def open_store(db, clock):
    opened = []

    def open_(path=None, secrets=(SECRET,), **kwargs):
        kwargs.setdefault("clock", clock)
        store = Store(path or db, Signer(list(secrets), "env"), **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def raw(path):
    return sqlite3.connect(path, isolation_level=None)


def fill(store, clock, *keys, ttl=3600.0):
    for key in keys:
        store.put(row(key, now=clock.now, ttl=ttl))
    store.flush()


def test_round_trip_and_readable_columns(open_store, db, clock):
    store = open_store()
    long_task = "Summarise\n\n  this   " + "very long task " * 20
    store.put(row("k1", "hello", task=long_task, latency=1.25))
    store.flush()
    got = store.get("k1", ORIGIN)
    assert got.completion.text == "hello"
    assert got.completion.latency == 1.25
    assert got.completion.request_id == "req_k1"
    assert (got.agent, got.model, got.input_tokens, got.output_tokens) == ("poet", MODEL, 10, 20)
    agent, model, task, response, tin, tout, created, expires = (
        raw(db)
        .execute("SELECT agent, model, task, response, input_tokens, output_tokens, created, expires FROM responses")
        .fetchone()
    )
    assert (agent, model, tin, tout) == ("poet", MODEL, 10, 20)
    assert task.startswith("Summarise this very long task") and len(task) == 80
    assert json.loads(response) == message("hello")
    assert expires - created == 3600.0


def test_file_settings(open_store, db, monkeypatch):
    timeouts = []

    def connecting(path, busy_timeout):
        timeouts.append(busy_timeout)
        return connect(path, busy_timeout)

    monkeypatch.setattr(store_module, "connect", connecting)
    store = open_store(busy_timeout=2.5)
    conn = raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.put(row("a"))
    store.flush()  # the writer's connection is open by now, with the store's busy timeout
    assert timeouts == [2.5]
    assert connect(db, 2.5).execute("PRAGMA busy_timeout").fetchone()[0] == 2500


def test_missing_key_is_none(open_store):
    assert open_store().get("nope", ORIGIN) is None


# -- tampering -----------------------------------------------------------------------------------------

TAMPERS = {
    "synthetic": 1,
    "agent": "someone-else",
    "model": "claude-opus-4",
    "task": "a different task",
    "response": json.dumps(message("forged answer"), separators=(",", ":")),
    "request_id": "req_forged",
    "input_tokens": 9999,
    "output_tokens": 0,
    "latency": 0.001,
    "created": 1.0,
    "expires": 9e12,
    "signature": b"\x00" * 32,
}


@pytest.mark.parametrize("column", sorted(TAMPERS))
def test_an_edited_column_is_never_served(open_store, db, clock, column):
    counts = StatsCounter()
    store = open_store(counts=counts)
    fill(store, clock, "victim", "bystander")
    raw(db).execute(f"UPDATE responses SET {column} = ? WHERE key = 'victim'", (TAMPERS[column],))
    with pytest.warns(CacheIntegrityWarning, match=r"A cached answer in .* failed its signature check"):
        assert store.get("victim", ORIGIN) is None
    store.flush()
    assert counts.tampered == 1
    store.flush()
    assert [k for (k,) in raw(db).execute("SELECT key FROM responses")] == ["bystander"]
    assert store.get("bystander", ORIGIN).completion.text == "answer for bystander"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("latency", "text where a number goes"),
        ("latency", b"bytes"),
        ("input_tokens", 10.5),
        ("request_id", 12345),
        ("request_id", None),
        ("response", b"{}"),
        ("signature", "text"),
    ],
)
def test_a_column_of_the_wrong_type_is_rejected(open_store, db, clock, column, value):
    store = open_store()
    fill(store, clock, "victim", "bystander")
    raw(db).execute(f"UPDATE responses SET {column} = ? WHERE key = 'victim'", (value,))
    with pytest.warns(CacheIntegrityWarning):
        assert store.get("victim", ORIGIN) is None


def test_an_edited_key_is_rejected_under_its_new_name(open_store, db, clock):
    store = open_store()
    fill(store, clock, "victim", "bystander")
    raw(db).execute("UPDATE responses SET key = 'forged' WHERE key = 'victim'")
    with pytest.warns(CacheIntegrityWarning):
        assert store.get("forged", ORIGIN) is None


def test_swapped_responses_are_both_rejected(open_store, db, clock):
    counts = StatsCounter()
    store = open_store(counts=counts)
    fill(store, clock, "a", "b", "c")
    conn = raw(db)
    ra, rb = (conn.execute("SELECT response FROM responses WHERE key = ?", (k,)).fetchone()[0] for k in "ab")
    conn.execute("UPDATE responses SET response = ? WHERE key = 'a'", (rb,))
    conn.execute("UPDATE responses SET response = ? WHERE key = 'b'", (ra,))
    with pytest.warns(CacheIntegrityWarning, match="failed its signature check"):
        assert store.get("a", ORIGIN) is None
    store.flush()  # the rest of the file is swept on the writer's thread, not the caller's
    assert counts.tampered == 2
    assert store.get("b", ORIGIN) is None
    assert store.get("c", ORIGIN) is not None


def test_swapped_keys_are_both_rejected(open_store, db, clock):
    store = open_store()
    fill(store, clock, "a", "b", "c")
    conn = raw(db)
    conn.execute("UPDATE responses SET key = 'tmp' WHERE key = 'a'")
    conn.execute("UPDATE responses SET key = 'a' WHERE key = 'b'")
    conn.execute("UPDATE responses SET key = 'b' WHERE key = 'tmp'")
    with pytest.warns(CacheIntegrityWarning, match="failed its signature check"):
        assert store.get("a", ORIGIN) is None
    assert store.get("b", ORIGIN) is None
    store.flush()
    assert raw(db).execute("SELECT count(*) FROM responses").fetchone()[0] == 1


def test_a_row_moved_to_another_endpoint_is_rejected(open_store, db, clock):
    store = open_store()
    fill(store, clock, "a")
    raw(db).execute("UPDATE responses SET origin = 'https://elsewhere.example'")
    with pytest.warns(CacheIntegrityWarning, match="failed its signature check"):
        assert store.get("a", "https://elsewhere.example") is None


def test_a_row_copied_to_another_key_is_rejected(open_store, db, clock):
    store = open_store()
    fill(store, clock, "a", "b")
    conn = raw(db)
    columns = "origin, synthetic, agent, model, task, response, request_id, input_tokens, output_tokens, latency, "
    columns += "created, expires, key_id, signature"
    copy = conn.execute(f"SELECT {columns} FROM responses WHERE key = 'a'").fetchone()
    conn.execute(f"INSERT INTO responses (key, {columns}) VALUES ('c', {', '.join('?' * 14)})", copy)
    with pytest.warns(CacheIntegrityWarning):
        assert store.get("c", ORIGIN) is None


# -- secrets -------------------------------------------------------------------------------------------


def test_rows_of_another_secret_are_kept_and_not_served(open_store, db, clock):
    fill(open_store(), clock, "a", "b", "c")
    counts = StatsCounter()
    store = open_store(secrets=[b"another-secret"], counts=counts)
    with pytest.warns(CacheIntegrityWarning, match="signed with a secret this kernel does not hold") as caught:
        assert store.get("a", ORIGIN) is None
    assert "CLAUDE_CACHE_SECRET" in str(caught[0].message)
    assert store.foreign_seen
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once; later ones are quiet
        assert store.get("b", ORIGIN) is None
        store.put(row("d", now=clock.now))
        store.flush()
        assert store.get("d", ORIGIN) is not None
        assert store.get("c", ORIGIN) is None
    assert counts.foreign == 3
    assert raw(db).execute("SELECT count(*) FROM responses").fetchone()[0] == 4


def test_two_secrets_on_one_file_never_delete_each_others_rows(open_store, db, clock):
    mine, theirs = open_store(secrets=[b"mine"]), open_store(secrets=[b"theirs"])
    for i in range(20):
        mine.put(row(f"m{i}", now=clock.now))
        theirs.put(row(f"t{i}", now=clock.now))
    mine.flush()
    theirs.flush()
    with pytest.warns(CacheIntegrityWarning):
        served = [mine.get(f"t{i}", ORIGIN) for i in range(20)] + [theirs.get(f"m{i}", ORIGIN) for i in range(20)]
    assert served == [None] * 40
    mine.verify()
    theirs.verify()
    assert all(mine.get(f"m{i}", ORIGIN) is not None for i in range(20))
    assert all(theirs.get(f"t{i}", ORIGIN) is not None for i in range(20))
    assert raw(db).execute("SELECT count(*) FROM responses").fetchone()[0] == 40


def test_two_secrets_can_each_keep_an_answer_to_the_same_request(open_store, db, clock):
    mine, theirs = open_store(secrets=[b"mine"]), open_store(secrets=[b"theirs"])
    mine.put(row("same", "my answer", now=clock.now))
    mine.flush()
    theirs.put(row("same", "their answer", now=clock.now))
    theirs.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheIntegrityWarning)  # each notes the other's row once
        assert mine.get("same", ORIGIN).completion.text == "my answer"
        assert theirs.get("same", ORIGIN).completion.text == "their answer"
    assert raw(db).execute("SELECT count(*) FROM responses WHERE key = 'same'").fetchone()[0] == 2


def test_rotation_reads_old_rows_and_writes_new_ones(open_store, clock):
    fill(open_store(secrets=[b"old"]), clock, "a")
    rotated = open_store(secrets=[b"new", b"old"])
    assert rotated.get("a", ORIGIN) is not None
    fill(rotated, clock, "b")
    only_new = open_store(secrets=[b"new"])
    assert only_new.get("b", ORIGIN) is not None


# -- damage --------------------------------------------------------------------------------------------


def test_garbage_file_is_set_aside_and_replaced(open_store, db, clock):
    db.write_bytes(b"this is not a database at all " * 200)
    (db.parent / (db.name + "-wal")).write_bytes(b"stale")
    with pytest.warns(CacheIntegrityWarning, match=r"damaged .* moved to cache\.sqlite\.corrupt-\d{8}T\d{6}"):
        store = open_store()
    aside = [p for p in db.parent.iterdir() if re.fullmatch(r"cache\.sqlite\.corrupt-\d{8}T\d{6}", p.name)]
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")
    assert (db.parent / (aside[0].name + "-wal")).read_bytes() == b"stale"
    fill(store, clock, "a")
    assert store.get("a", ORIGIN) is not None


def test_a_second_damage_in_the_same_second_gets_its_own_name(open_store, db):
    for _ in range(2):
        db.write_bytes(b"\x00garbage" * 100)
        with pytest.warns(CacheIntegrityWarning):
            open_store().close()
    assert len(list(db.parent.glob("cache.sqlite.corrupt-*"))) == 2


def test_newer_schema_is_not_touched(open_store, db):
    conn = raw(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(CacheFileError, match="schema version 99"):
        open_store()
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == 99


def test_unopenable_path_says_what_to_do(open_store, tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CacheFileError, match="persist=False") as caught:
        open_store(tmp_path / "dir.sqlite")
    assert isinstance(caught.value.__cause__, sqlite3.Error)


# -- expiry and maintenance ----------------------------------------------------------------------------


def test_expired_rows_are_not_served_and_are_removed(open_store, db, clock):
    store = open_store()
    fill(store, clock, "short", ttl=10)
    fill(store, clock, "long", ttl=100)
    clock.tick(11)
    assert store.get("short", ORIGIN) is None
    assert store.get("long", ORIGIN) is not None
    store.flush()
    assert [k for (k,) in raw(db).execute("SELECT key FROM responses")] == ["long"]


def test_expired_rows_cannot_be_revived_by_editing_expiry(open_store, db, clock):
    store = open_store()
    fill(store, clock, "a", "b", ttl=10)
    clock.tick(11)
    raw(db).execute("UPDATE responses SET expires = ? WHERE key = 'a'", (clock.now + 1000,))
    with pytest.warns(CacheIntegrityWarning):
        assert store.get("a", ORIGIN) is None


def test_prune_and_clear_report_counts(open_store, clock):
    store = open_store()
    fill(store, clock, "a", "b", "c", ttl=5)
    fill(store, clock, "d", ttl=500)
    clock.tick(10)
    assert store.prune() == 3
    assert store.count() == 1
    assert store.clear() == 1
    assert store.count() == 0


def test_first_write_of_a_session_prunes_old_rows(open_store, clock):
    fill(open_store(), clock, "old", ttl=5)
    clock.tick(10)
    store = open_store()
    fill(store, clock, "new")
    assert store.count() == 1


def test_verify_reports_and_cleans(open_store, db, clock):
    store = open_store()
    fill(store, clock, "ok1", "ok2", "bad", ttl=100)
    fill(store, clock, "old", ttl=5)
    raw(db).execute("UPDATE responses SET latency = 9 WHERE key = 'bad'")
    clock.tick(10)
    report = store.verify()
    assert (report.total, report.ok, report.bad, report.expired) == (4, 2, ("bad",), ("old",))
    assert report.removed == 2 and not report.secret_mismatch
    assert store.count() == 2


def test_verify_with_the_wrong_secret_keeps_the_rows(open_store, clock):
    fill(open_store(), clock, "a", "b")
    report = open_store(secrets=[b"wrong"]).verify()
    assert report.secret_mismatch and (report.foreign, report.bad, report.removed) == (2, (), 0)
    assert open_store().count() == 2


def test_closed_store_is_inert(open_store, clock):
    store = open_store()
    fill(store, clock, "a")
    store.close()
    store.close()
    assert store.get("a", ORIGIN) is None
    store.put(row("b"))  # dropped quietly: the answer is still in memory upstream
    with pytest.raises(CacheError, match="closed"):
        store.clear()


def test_a_store_nobody_closes_is_closed_when_collected(db, clock):
    store = Store(db, Signer([SECRET], "env"), clock=clock)
    store.put(row("a", now=clock.now))
    (thread,) = [t for t in threading.enumerate() if t.name == "claude-force-nb-cache-writer"]
    del store
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert raw(db).execute("SELECT count(*) FROM responses").fetchone()[0] == 1


# -- sharing -------------------------------------------------------------------------------------------


def run_python(code, *args):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def test_another_process_reads_what_this_one_wrote(open_store, db, clock):
    fill(open_store(), clock, "shared-key")
    out = run_python(
        """
        import sys, time
        from claude_force_nb._cache.secret import Signer
        from claude_force_nb._cache.store import Store
        store = Store(sys.argv[1], Signer([sys.argv[2].encode()], "env"), clock=lambda: float(sys.argv[3]))
        print(store.get("shared-key", sys.argv[4]).completion.text)
        store.close()
    """,
        db,
        SECRET.decode(),
        clock.now,
        ORIGIN,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "answer for shared-key"


def test_two_processes_writing_at_once_lose_nothing(open_store, db):
    open_store().close()  # create the schema first, as an existing cache would have it
    writer = """
        import sys, time
        from claude_force_nb._request import Completion
        from claude_force_nb._cache.secret import Signer
        from claude_force_nb._cache.store import Row, Store
        store = Store(sys.argv[1], Signer([sys.argv[2].encode()], "env"))
        for i in range(300):
            now = time.time()
            store.put(Row(f"{sys.argv[3]}-{i}", Completion({"content": []}, 0.1), now, now + 3600))
            if i % 7 == 0:
                store.flush()  # many small transactions, to contend for the lock
        store.close()
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(writer), str(db), SECRET.decode(), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p", "q")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0 and err == "", err
    store = open_store(clock=__import__("time").time)
    assert store.count() == 600
    report = store.verify()
    assert report.ok == 600 and not report.bad


def test_threads_can_read_at_once(open_store, clock):
    store = open_store()
    fill(store, clock, *[f"k{i}" for i in range(20)])
    failures = []

    def read():
        for i in range(200):
            if store.get(f"k{i % 20}", ORIGIN) is None:
                failures.append(i)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_clearing_gives_the_space_back(open_store, clock):
    store = open_store()
    for i in range(300):
        store.put(row(f"k{i}", text="x" * 2000, now=clock.now))
    store.flush()
    full = store.size()
    assert store.clear() == 300
    assert store.size() < full / 10


# -- endpoints -----------------------------------------------------------------------------------------


def test_an_answer_is_served_only_to_the_endpoint_that_gave_it(open_store, clock):
    store = open_store()
    store.put(row("k", "from the simulator", now=clock.now, origin="http://127.0.0.1:8765", synthetic=True))
    store.put(row("k", "from Claude", now=clock.now))
    store.flush()
    assert store.get("k", ORIGIN).completion.text == "from Claude"
    simulated = store.get("k", "http://127.0.0.1:8765").completion
    assert (simulated.text, simulated.synthetic) == ("from the simulator", True)
    assert store.get("k", "https://gateway.example") is None
    assert [(e.origin, e.synthetic, e.rows) for e in sorted(store.endpoints())] == [
        ("http://127.0.0.1:8765", True, 1),
        (ORIGIN, False, 1),
    ]


def test_replay_serves_a_recording_from_any_endpoint_claudes_first(open_store, clock):
    store = open_store()
    store.put(row("k", "recorded offline", now=clock.now, origin="local", synthetic=True))
    store.flush()
    assert store.get("k", ORIGIN, replay=True).completion.text == "recorded offline"
    store.put(row("k", "recorded from the API", now=clock.now, ttl=1))
    store.flush()
    clock.tick(10)
    # CI replays offline (origin "local"), yet Claude's recording wins over a synthetic one.
    assert store.get("k", "local", replay=True).completion.text == "recorded from the API"
    store.put(row("k", "from a gateway", now=clock.now, origin="https://gateway.example"))
    store.flush()
    assert store.get("k", "https://gateway.example", replay=True).completion.text == "from a gateway"


def test_a_file_in_the_earlier_format_is_set_aside(open_store, db, clock):
    conn = raw(db)
    conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with pytest.warns(CacheIntegrityWarning, match=r"earlier claude-force-nb \(format 1\)"):
        store = open_store()
    assert list(db.parent.glob("cache.sqlite.format1-*"))
    fill(store, clock, "a")
    assert store.get("a", ORIGIN) is not None


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_and_directories_are_private_whatever_the_umask(tmp_path, clock):
    previous = os.umask(0)
    try:
        home = tmp_path / "a" / "b"
        store = Store(home / "cache.sqlite", Signer([SECRET], "env"), clock=clock)
        store.put(row("k", now=clock.now))
        store.flush()
        secret_dir = tmp_path / "secrets" / "x"
        load_signer(secret_dir)
    finally:
        os.umask(previous)
    for directory in (tmp_path / "a", home, tmp_path / "secrets", secret_dir):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{home / 'cache.sqlite'}{suffix}").st_mode) == 0o600, suffix
    store.close()


# -- damage found mid-session --------------------------------------------------------------------------

PAGE = 4096


def filled_then_damaged(open_store, db, clock, damage):
    store = open_store()
    for i in range(300):
        store.put(row(f"k{i}", "x" * 1500, now=clock.now))
    store.close()  # checkpointed: the rows are in the file itself
    size = db.stat().st_size
    with open(db, "r+b") as f:
        damage(f, size)
    assert db.stat().st_size == size
    return open_store()


def zero_a_middle_page(f, size):
    f.seek((size // PAGE // 2) * PAGE)
    f.write(b"\x00" * PAGE)


def scribble_on_the_last_page(f, size):
    f.seek(size - PAGE // 2)
    f.write(bytes(range(256)) * 2)


@pytest.mark.parametrize("damage", [zero_a_middle_page, scribble_on_the_last_page])
def test_damage_found_later_sets_the_file_aside_once_and_the_session_goes_on(open_store, db, clock, damage):
    store = filled_then_damaged(open_store, db, clock, damage)
    with pytest.warns(CacheIntegrityWarning) as caught:
        served = [store.get(f"k{i}", ORIGIN) for i in range(300)]
    [warning] = caught  # once
    assert "was damaged (database disk image is malformed)" in str(warning.message)
    assert "This session goes on" in str(warning.message)
    assert None in served
    assert len(list(db.parent.glob("cache.sqlite.corrupt-*"))) == 3  # the file, its -wal and -shm
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fresh file works quietly
        store.put(row("after", now=clock.now))
        store.flush()
        assert store.get("after", ORIGIN).completion.text == "answer for after"
    assert raw(db).execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.parametrize("damage", [zero_a_middle_page, scribble_on_the_last_page])
@pytest.mark.parametrize("folder", ["cache", "a#b?c%20d"])
def test_a_rebuilt_file_keeps_every_row_that_can_still_be_read_and_verified(
    open_store, tmp_path, clock, damage, folder
):
    db = tmp_path / folder / "cache.sqlite"
    store = filled_then_damaged(lambda: open_store(db), db, clock, damage)
    with pytest.warns(CacheIntegrityWarning, match="with every answer that can still be read from it and verified"):
        served = [store.get(f"k{i}", ORIGIN) is not None for i in range(300)]
    # The read that met the damage, and every one after it, found the rows saved into the fresh file.
    # A page holds two of these rows: the damage costs a few, never the rows before or after it.
    assert 290 <= sum(served) < 300
    assert served[0] and (served[-1] or damage is scribble_on_the_last_page)
    assert [store.get(f"k{i}", ORIGIN) is not None for i in range(300)] == served
    assert raw(db).execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert all(path.parent == db.parent for path in tmp_path.rglob("*") if path.is_file())  # no stray files


def test_two_stores_on_one_damaged_file_set_it_aside_once(open_store, db, clock):
    # Two kernels on one file: the first to meet the damage rebuilds; the
    # second must move to the fresh file, not set that one aside in turn.
    first = filled_then_damaged(open_store, db, clock, zero_a_middle_page)
    second = open_store()
    with pytest.warns(CacheIntegrityWarning, match="This session goes on"):
        [first.get(f"k{i}", ORIGIN) for i in range(300)]
    first.put(row("rebuilt", now=clock.now))
    first.flush()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheIntegrityWarning)
        for i in range(300):
            second.get(f"k{i}", ORIGIN)
        second.put(row("second", now=clock.now))
        second.flush()
    assert len(list(db.parent.glob("cache.sqlite.corrupt-*"))) == 3  # one file set aside, with its -wal and -shm
    assert second.get("rebuilt", ORIGIN) is not None and first.get("second", ORIGIN) is not None


def test_a_rebuilt_file_is_private_whatever_the_umask(open_store, db, clock):
    previous = os.umask(0)
    try:
        store = filled_then_damaged(open_store, db, clock, zero_a_middle_page)
        with pytest.warns(CacheIntegrityWarning):
            [store.get(f"k{i}", ORIGIN) for i in range(300)]
        store.put(row("after", now=clock.now))
        store.flush()
    finally:
        os.umask(previous)
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{db}{suffix}").st_mode) == 0o600, suffix


def test_a_tampered_row_and_a_broken_page_raise_nothing(open_store, db, clock):
    store = filled_then_damaged(open_store, db, clock, zero_a_middle_page)
    raw(db).execute("UPDATE responses SET latency = 9 WHERE key = 'k0'")
    with pytest.warns(CacheIntegrityWarning):
        served = [store.get(f"k{i}", ORIGIN) for i in range(300)]
    store.flush()
    assert served[0] is None
    store.put(row("after", now=clock.now))
    store.flush()
    assert store.get("after", ORIGIN) is not None


def test_every_dropped_write_is_counted_and_said_at_most_once_a_minute(open_store, db, clock, monkeypatch):
    before = open_store()
    fill(before, clock, "before")
    before.close()
    # This store's writer can only open the file read-only (a full disk, say): every write fails.
    read_only = lambda path, timeout: sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)  # noqa: E731
    monkeypatch.setattr(store_module, "connect", read_only)
    counts = StatsCounter()
    store = open_store(counts=counts)
    with pytest.warns(CacheIntegrityWarning, match=r"Could not write 1 answer to the response cache"):
        fill(store, clock, "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the minute: counted, not said again
        fill(store, clock, "b", "c")
    assert counts.dropped == 3
    assert store.get("before", ORIGIN) is not None and store.get("a", ORIGIN) is None


# -- bounds --------------------------------------------------------------------------------------------


def test_the_file_keeps_within_its_row_bound_dropping_what_expires_first(open_store, db, clock):
    counts = StatsCounter()
    store = open_store(max_rows=500, counts=counts)
    for i in range(1200):
        store.put(row(f"k{i}", now=clock.now, ttl=10_000 + i))  # later keys expire later
    store.flush()
    assert store.count() <= 500 and counts.trimmed >= 700
    assert store.get("k1199", ORIGIN) is not None and store.get("k0", ORIGIN) is None


def test_no_commit_leaves_the_file_past_its_row_bound(open_store, db, clock):
    store = open_store(max_rows=100)
    for i in range(400):
        store.put(row(f"k{i}", now=clock.now, ttl=10_000 + i))
        if i % 37 == 0:
            store.flush()
            assert store.count() <= 100
    store.close()
    assert raw(db).execute("SELECT count(*) FROM responses").fetchone()[0] <= 100


def test_the_file_keeps_within_its_byte_bound(open_store, db, clock):
    store = open_store(max_bytes=2 << 20)
    for i in range(1500):
        store.put(row(f"k{i}", "x" * 4000, now=clock.now, ttl=10_000 + i))
    store.flush()
    used = (
        raw(db)
        .execute(
            "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)"
        )
        .fetchone()[0]
        * raw(db).execute("PRAGMA page_size").fetchone()[0]
    )
    assert used <= 2 << 20
    assert store.get("k1499", ORIGIN) is not None
