"""The team cache against a real PostgreSQL server: signed rows, tiers, faults, schema versions, no password shown."""

import logging
import time
import warnings

import psycopg
import pytest
from postgres import PASSWORD

from claude_force_nb import AsyncAgentOrchestrator, CacheError, ClaudeForceWarning, ResponseCache
from claude_force_nb._cache.team import TeamStore
from claude_force_nb._cache.team_schema import SCHEMA_VERSION
from claude_force_nb._request import Completion, Request

SECRET = b"team-secret-shared-by-every-member"
OTHER = b"a-secret-this-team-does-not-hold!!"


def request(task="What is a monad?"):
    return Request.for_task(task, model="claude-sonnet-4-6", max_tokens=100)


def completion(text="An answer.", origin="https://api.anthropic.com"):
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    return Completion(message, 0.3, "req_1", origin, False)


def cache(tmp_path, url, name="member", secret=SECRET, **options):
    return ResponseCache(tmp_path / f"{name}.sqlite", secrets=[secret], team_url=url, **options)


def rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT key, origin, key_id, task FROM claude_force_nb_responses").fetchall()


def test_an_answer_stored_by_one_member_is_served_to_another_from_the_database(tmp_path, team_url):
    ours, theirs = cache(tmp_path, team_url, "ours"), cache(tmp_path, team_url, "theirs")
    key = ours.key(request())
    ours.store(request(), completion(), agent="explainer")
    ours.flush()
    assert len(rows(team_url)) == 1
    hit = theirs.lookup(key, "https://api.anthropic.com")
    assert hit is not None and hit.completion.text == "An answer." and hit.source == "file"
    # Copied into their file: the next read stays on their machine.
    theirs.close()
    again = ResponseCache(tmp_path / "theirs.sqlite", secrets=[SECRET])
    assert again.lookup(key, "https://api.anthropic.com") is not None
    for c in (ours, again):
        c.close()


def test_rows_are_filed_by_endpoint(tmp_path, team_url):
    ours, theirs = cache(tmp_path, team_url, "ours"), cache(tmp_path, team_url, "theirs")
    key = ours.key(request())
    ours.store(request(), completion(origin="http://127.0.0.1:9999"))
    ours.flush()
    assert theirs.lookup(key, "https://api.anthropic.com") is None
    assert theirs.lookup(key, "http://127.0.0.1:9999") is not None
    assert theirs.lookup(key, "https://api.anthropic.com", replay=True) is not None


def test_a_row_edited_in_the_table_is_refused_as_tampered(tmp_path, team_url):
    ours = cache(tmp_path, team_url, "ours")
    key = ours.key(request())
    ours.store(request(), completion())
    ours.flush()
    with psycopg.connect(team_url) as conn:
        conn.execute("UPDATE claude_force_nb_responses SET response = replace(response, 'An answer', 'Evil')")
    theirs = cache(tmp_path, team_url, "theirs")
    with pytest.warns(Warning, match="failed their signature check"):
        assert theirs.lookup(key, "https://api.anthropic.com") is None
    assert rows(team_url) == []
    assert theirs.stats().tampered == 1


def test_a_row_of_a_secret_not_held_is_kept_and_not_served(tmp_path, team_url):
    stranger = cache(tmp_path, team_url, "stranger", secret=OTHER)
    key = stranger.key(request())
    stranger.store(request(), completion())
    stranger.flush()
    ours = cache(tmp_path, team_url, "ours")
    assert ours.lookup(key, "https://api.anthropic.com") is None
    assert len(rows(team_url)) == 1
    report = ours.verify()
    assert (report.foreign, report.removed) == (1, 0)


def test_info_prune_clear_and_verify_reach_the_database(tmp_path, team_url):
    ours = cache(tmp_path, team_url)
    for i in range(3):
        ours.store(request(f"task {i}"), completion())
    ours.flush()
    info = ours.info()
    assert info.team is not None
    assert (info.team.entries, info.team.reachable, info.team.queued, info.team.dropped) == (3, True, 0, 0)
    assert info.team.where.endswith(f"/{team_url.rsplit('/', 1)[1]}") and PASSWORD not in info.team.where
    assert ours.verify().ok == 6  # three in the file, three in the database
    assert ours.prune() == 0
    assert ours.clear() == 6
    assert rows(team_url) == []


def test_the_database_away_at_start_costs_one_warning_and_nothing_waits_for_it(tmp_path, postgres):
    url = postgres.url("postgres").replace(str(postgres.port), "1")  # nothing listens there
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = cache(tmp_path, url)
        key = ours.key(request())
        ours.store(request(), completion())
        assert ours.lookup(key, "https://api.anthropic.com").source == "memory"
        for _ in range(20):
            assert ours.lookup("missing", "https://api.anthropic.com") is None
    assert len([w for w in caught if "unreachable" in str(w.message)]) == 1
    info = ours.info()
    assert info.team.reachable is False and info.team.queued == 1
    assert all(PASSWORD not in str(w.message) for w in caught)
    ours.close()


@pytest.mark.filterwarnings("ignore:The team cache:claude_force_nb.ClaudeForceWarning")
def test_writes_queued_while_the_database_is_down_reach_it_when_it_is_back(tmp_path, postgres, caplog):
    caplog.set_level(logging.WARNING)
    url = postgres.database()
    ours = cache(tmp_path, url)
    ours.store(request("before"), completion())
    ours.flush()
    postgres.stop()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClaudeForceWarning)
            for i in range(5):
                ours.store(request(f"during {i}"), completion())
            assert ours.lookup(ours.key(request("during 0")), "https://api.anthropic.com") is not None
    finally:
        postgres.start()
    for _ in range(600):  # the writer looks for the database again, backing off; nothing here waits on a clock
        if not ours.info().team.queued:
            break
        time.sleep(0.05)
    assert len(rows(url)) == 6
    assert ours.info().team.queued == 0
    # The outage is said once, by the cache; the pool's own messages about its connections are not repeated.
    assert not [r for r in caplog.records if r.name == "psycopg.pool"]


def test_a_schema_from_the_future_is_refused_in_one_line_and_nothing_is_written(tmp_path, team_url):
    with psycopg.connect(team_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE claude_force_nb_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO claude_force_nb_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    ours = cache(tmp_path, team_url)
    expected = f"schema version {SCHEMA_VERSION + 1}; this claude-force-nb knows"
    with pytest.warns(ClaudeForceWarning, match="Upgrade it"), pytest.raises(CacheError, match=expected) as raised:
        ours.clear()
    assert "\n" not in str(raised.value) and PASSWORD not in str(raised.value)
    ours.store(request(), completion())
    ours.flush()
    assert ours.info().team.queued == 0
    with psycopg.connect(team_url) as conn:
        assert conn.execute("SELECT to_regclass('claude_force_nb_responses')").fetchone() == (None,)


def test_the_password_never_shows(tmp_path, postgres, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    wrong = postgres.url("postgres", password="wrong-" + PASSWORD)
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = cache(tmp_path, wrong)
        ours.store(request(), completion())
        seen += [repr(ours), repr(ours._store), str(ours.info())]
        try:
            ours.clear()
        except CacheError as exc:
            seen += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
        ours.close()
    seen += [str(w.message) for w in caught] + [caplog.text] + list(capsys.readouterr())
    assert seen and not [text for text in seen if PASSWORD in text]


async def test_an_orchestrator_takes_the_url_and_a_second_one_hits(tmp_path, team_url, server):
    one = AsyncAgentOrchestrator(
        api_key="k", base_url=server.url, cache_path=tmp_path / "one.sqlite", cache_url=team_url
    )
    first = await one.execute_agent("explainer", "shared question")
    await one.close()
    two = AsyncAgentOrchestrator(
        api_key="k", base_url=server.url, cache_path=tmp_path / "two.sqlite", cache_url=team_url
    )
    second = await two.execute_agent("explainer", "shared question")
    await two.close()
    assert not first.cached and second.cached and second.output == first.output
    assert len([r for r in server.log if r.path == "/v1/messages"]) == 1


def test_the_store_says_where_without_the_password(team_url):
    from claude_force_nb._cache.secret import Signer

    store = TeamStore(team_url, Signer([SECRET], "test"))
    assert PASSWORD not in repr(store) and store.where.startswith("postgresql://team@127.0.0.1:")
    store.close()


def test_push_copies_the_files_verified_rows_once_and_pull_brings_them_to_another_file(tmp_path, team_url):
    import sqlite3

    from claude_force_nb._cache.moving import Moved

    laptop = ResponseCache(tmp_path / "laptop.sqlite", secrets=[SECRET], ttl_seconds=3600)
    for i in range(4):
        laptop.store(request(f"task {i}"), completion(f"answer {i}"))
    stranger = ResponseCache(tmp_path / "laptop.sqlite", secrets=[OTHER])
    stranger.store(request("theirs"), completion("their answer"))
    # Expiry is signed, so an expired row is made by a clock an hour behind, not by an edit.
    aged = ResponseCache(tmp_path / "laptop.sqlite", secrets=[SECRET], ttl_seconds=60, clock=lambda: time.time() - 3600)
    aged.store(request("task 3"), completion("answer 3"))
    for c in (laptop, stranger, aged):
        c.close()
    with sqlite3.connect(tmp_path / "laptop.sqlite") as db:
        db.execute("UPDATE responses SET response = replace(response, 'answer 2', 'edited') WHERE task = 'task 2'")
    laptop = cache(tmp_path, team_url, "laptop")
    pushed = laptop.push()
    assert pushed == Moved(read=5, copied=3, present=0, foreign=1, tampered=1, expired=1)
    assert laptop.push() == Moved(read=5, copied=0, present=3, foreign=1, tampered=1, expired=1)
    assert len(rows(team_url)) == 3
    ci = cache(tmp_path, team_url, "ci")
    pulled = ci.pull()
    assert (pulled.copied, pulled.foreign, pulled.tampered) == (3, 1, 0)
    assert ci.pull().copied == 0
    ci.close()
    offline = ResponseCache(tmp_path / "ci.sqlite", secrets=[SECRET], mode="replay")
    for i in (0, 1):
        hit = offline.lookup(offline.key(request(f"task {i}")), "https://api.anthropic.com", replay=True)
        assert hit is not None and hit.completion.text == f"answer {i}"
    with pytest.warns(Warning, match="signed with a secret this kernel does not hold"):
        assert offline.lookup(offline.key(request("theirs")), "https://api.anthropic.com", replay=True) is None
    assert offline.verify().foreign == 1


def test_moving_answers_needs_a_team_cache(tmp_path):
    alone = ResponseCache(tmp_path / "alone.sqlite", secrets=[SECRET])
    with pytest.raises(CacheError, match="No team cache to move answers to or from: set CLAUDE_FORCE_NB_CACHE_URL"):
        alone.push()


def test_cache_push_and_pull_from_the_magic_line(ip, team_url, monkeypatch, tmp_path, capsys):
    ip.run_line_magic("config", f"AgentMagics.cache_url = {team_url!r}")
    ip.run_line_magic("config", f"AgentMagics.cache_path = {str(tmp_path / 'magic.sqlite')!r}")
    ip.run_cell_magic("agent", "explainer", "What is a closure?")
    capsys.readouterr()
    ip.run_line_magic("agent", "cache push")
    said = capsys.readouterr().out
    assert "answers copied from the cache file to postgresql://team@127.0.0.1" in said
    assert "were there already" in said and PASSWORD not in said
    ip.run_line_magic("agent", "cache info")
    info = capsys.readouterr().out
    assert "team cache: postgresql://team@127.0.0.1" in info and "team writes: 0 queued, 0 dropped" in info
    assert PASSWORD not in info


def test_connection_options_in_the_url_pass_through_to_psycopg(tmp_path, team_url):
    with_options = team_url + "?sslmode=disable&application_name=claude-force-nb-test"
    ours = cache(tmp_path, with_options)
    ours.store(request(), completion())
    ours.flush()
    assert ours.info().team.reachable
    with psycopg.connect(team_url) as conn:
        names = {name for (name,) in conn.execute("SELECT application_name FROM pg_stat_activity")}
    assert "claude-force-nb-test" in names
    ours.close()
    # The test server speaks no TLS: a URL that requires it is refused, and said so without the password.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strict = cache(tmp_path, team_url + "?sslmode=require", "strict")
        assert strict.info().team.reachable is False
    said = " ".join(str(w.message) for w in caught)
    assert "unreachable" in said and "SSL" in said and PASSWORD not in said
    strict.close()
