"""The team database's schema version: a newer one is refused, against a real PostgreSQL."""

import psycopg
import pytest
from postgres import PASSWORD
from teamcache import cache, completion, request

from claude_force_nb import CacheError, ClaudeForceWarning
from claude_force_nb._cache.team_schema import SCHEMA_VERSION


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
