"""Moving answers between the cache file and the team database (push and pull), against a real PostgreSQL."""

import sqlite3
import time

import pytest
from postgres import PASSWORD
from teamcache import OTHER, SECRET, cache, completion, request, rows

from claude_force_nb import CacheError, ResponseCache
from claude_force_nb._cache.moving import Moved


def test_push_copies_the_files_verified_rows_once_and_pull_brings_them_to_another_file(tmp_path, team_url):

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
    # The password comes from the environment, as libpq reads it, not from the notebook.
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    ip.run_line_magic("config", f"AgentMagics.cache_url = {team_url.replace(f':{PASSWORD}@', '@')!r}")
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
