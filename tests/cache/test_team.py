"""The team cache against a real PostgreSQL server: signed rows behind the file, faults, no password shown."""

import logging
import time
import warnings

import psycopg
import pytest
from postgres import PASSWORD
from teamcache import OTHER, SECRET, cache, completion, request, rows

from claude_force_nb import AsyncAgentOrchestrator, CacheError, ClaudeForceWarning, ResponseCache
from claude_force_nb._cache.team import TeamStore


def test_an_answer_stored_by_one_member_is_served_to_another_from_the_database(tmp_path, team_url):
    ours, theirs = cache(tmp_path, team_url, "ours"), cache(tmp_path, team_url, "theirs")
    key = ours.key(request())
    ours.store(request(), completion(), agent="explainer")
    ours.flush()
    assert len(rows(team_url)) == 1
    hit = theirs.lookup(key, "https://api.anthropic.com")
    assert hit is not None and hit.completion.text == "An answer." and hit.source == "team"
    stats = theirs.stats()
    assert (stats.file_hits, stats.team_hits, stats.hits) == (0, 1, 1)
    assert stats.team is not None and stats.team.reachable and stats.team.queued == 0
    assert theirs.lookup(key, "https://api.anthropic.com").source == "memory"
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


@pytest.mark.filterwarnings("ignore:The team cache:claude_force_nb.ClaudeForceWarning")
def test_a_read_that_finds_the_database_away_is_served_from_it_again_once_it_is_back(tmp_path, postgres):
    url = postgres.database()
    theirs = cache(tmp_path, url, "theirs")
    theirs.store(request("shared"), completion())
    theirs.close()
    ours = cache(tmp_path, url, "ours")
    assert ours.lookup("missing", "https://api.anthropic.com") is None and ours.stats().team.reachable
    postgres.stop()
    try:
        assert ours.lookup("missing too", "https://api.anthropic.com") is None  # finds it away; nothing queued
        assert not ours.stats().team.reachable
    finally:
        postgres.start()
    for _ in range(600):  # no write is waiting: the writer still looks for the database again
        if ours.stats().team.reachable:
            break
        time.sleep(0.05)
    hit = ours.lookup(ours.key(request("shared")), "https://api.anthropic.com")
    assert hit is not None and hit.source == "team"
    ours.close()


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


def test_a_row_the_database_refuses_is_dropped_alone_and_is_no_outage(tmp_path, team_url):
    ours = cache(tmp_path, team_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours.store(request("fine"), completion("A fine answer."))
        ours.store(request("Text read from a binary file: \x00\x01."), completion("An answer about it."))
        ours.store(request("also fine"), completion("Another answer."))
        ours.flush()
    info = ours.info().team
    assert (info.entries, info.dropped, info.queued, info.reachable) == (2, 1, 0, True)
    assert not [w for w in caught if "unreachable" in str(w.message)]
    # The refused row is still in the file.
    assert ours.lookup(ours.key(request("Text read from a binary file: \x00\x01.")), "https://api.anthropic.com")


def test_clear_leaves_no_queued_row_to_come_back(tmp_path, team_url):
    ours = cache(tmp_path, team_url)
    for i in range(50):
        ours.store(request(f"task {i}"), completion())
    ours.clear()
    ours.flush()
    assert rows(team_url) == []


def test_a_url_with_its_password_is_refused_in_config_and_kept_out_of_the_notebook(ip, team_url, caplog):
    magics = ip.magics_manager.registry["AgentMagics"]
    ip.run_line_magic("config", f"AgentMagics.cache_url = {team_url!r}")  # %config reports the refusal itself
    assert magics.cache_url is None
    assert "keep the password out of the notebook: put it in PGPASSWORD or ~/.pgpass" in caplog.text
    without = team_url.replace(f":{PASSWORD}@", "@")
    ip.run_line_magic("config", f"AgentMagics.cache_url = {without!r}")
    assert magics.cache_url == without


@pytest.mark.filterwarnings("ignore:The team cache:claude_force_nb.ClaudeForceWarning")
async def test_a_sweep_goes_on_through_the_database_stopping_and_coming_back(
    tmp_path, postgres, server, monkeypatch, until
):
    import asyncio

    monkeypatch.setenv("CLAUDE_CACHE_SECRET", SECRET.decode())
    url = postgres.database()
    server.latency = 0.05
    async with AsyncAgentOrchestrator(
        api_key="k", base_url=server.url, cache_path=tmp_path / "sweep.sqlite", cache_url=url, max_concurrent=4
    ) as o:
        batch = o.batch([("explainer", f"call {i}") for i in range(120)])
        batch.start()
        await until(lambda: batch.progress.finished >= 30)  # a quarter in, the database goes away
        await asyncio.to_thread(postgres.stop)
        await until(lambda: batch.progress.finished >= 80)
        await asyncio.to_thread(postgres.start)
        results = await batch
        await until(lambda: not o.cache.info().team.queued)  # the writer finds it back, backing off
    assert all(r.success for r in results)  # no call lost
    assert len(rows(url)) == 120  # every answer reached the database once it was back
