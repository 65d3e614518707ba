import sqlite3
import threading

import pytest

from claude_force_nb._cache.database import connect
from claude_force_nb._cache.writer import Writer


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.sqlite"
    conn = connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.close()
    return path


@pytest.fixture
def writer(db):
    errors = []
    w = Writer(lambda: connect(db, 5.0), on_error=lambda error, statements: errors.append((error, statements)))
    w.errors = errors
    yield w
    w.close()


def count(db):
    return sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()[0]


def test_flush_waits_for_queued_statements(writer, db):
    for n in range(100):
        writer.execute("INSERT INTO t VALUES (?)", (n,))
    writer.flush()
    assert count(db) == 100


def test_flush_before_any_write_returns(writer):
    writer.flush()


def test_call_runs_after_what_was_queued(writer):
    writer.execute("INSERT INTO t VALUES (1)")
    writer.execute("INSERT INTO t VALUES (2)")
    assert writer.call(lambda conn: conn.execute("SELECT sum(n) FROM t").fetchone()[0]) == 3


def test_call_raises_what_it_raised_and_rolls_back(writer, db):
    def fails(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise KeyError("nope")

    with pytest.raises(KeyError):
        writer.call(fails)
    writer.flush()
    assert count(db) == 0


def test_a_failed_batch_is_reported_and_work_goes_on(writer, db):
    writer.execute("INSERT INTO missing_table VALUES (1)")
    writer.flush()
    [(error, statements)] = writer.errors
    assert isinstance(error, sqlite3.Error) and statements == [("INSERT INTO missing_table VALUES (1)", ())]
    writer.execute("INSERT INTO t VALUES (1)")
    writer.flush()
    assert count(db) == 1


def test_another_connection_holding_the_lock_is_waited_for(writer, db):
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    writer.flush()
    release.join()
    assert count(db) == 1 and writer.errors == []


def test_close_commits_and_then_refuses(writer, db):
    writer.execute("INSERT INTO t VALUES (1)")
    writer.close()
    writer.close()
    assert count(db) == 1
    with pytest.raises(RuntimeError, match="closed"):
        writer.execute("INSERT INTO t VALUES (2)")


def test_an_error_handler_that_raises_does_not_stop_the_thread(db):
    def explode(exc):
        raise RuntimeError("a warnings filter set to error")

    w = Writer(lambda: connect(db, 5.0), on_error=explode)
    try:
        w.execute("INSERT INTO missing_table VALUES (1)")
        w.flush()
        w.execute("INSERT INTO t VALUES (1)")
        w.flush()
        assert count(db) == 1
    finally:
        w.close()
