import asyncio
import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output
from nbval.plugin import get_sanitize_patterns

from claude_force_nb import AgentResult, AsyncAgentOrchestrator, CacheStats
from claude_force_nb._cache import TeamStatus
from claude_force_nb._notebook.cells import Row, rows, rows_html, rows_text
from claude_force_nb._notebook.panel import WIDGET_VIEW, StatsPanel, stat_items, summary_text
from claude_force_nb._spend import Spend
from claude_force_nb.simulator import LocalServer, RateLimits

CALLS = [("code-reviewer", f"review snippet {i}") for i in range(6)] + [("explainer", "what is a monad?")]


class Counting:
    """Wraps an orchestrator and counts ``stats()`` reads, one per redraw."""

    def __init__(self, orchestrator: AsyncAgentOrchestrator):
        self.orchestrator = orchestrator
        self.reads = 0

    def stats(self) -> CacheStats:
        self.reads += 1
        return self.orchestrator.stats()

    def pace(self):
        return self.orchestrator.pace()

    def spent(self):
        return self.orchestrator.spent()


@pytest.fixture
async def orchestrator(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="test") as orch:
        yield orch


def find(widget, css_class):
    """The widget under ``widget`` whose state lists ``css_class``, searched through children."""
    if css_class in widget.get_state().get("_dom_classes", ()):
        return widget
    for child in getattr(widget, "children", ()):
        found = find(child, css_class)
        if found is not None:
            return found
    return None


def state(panel, css_class):
    widget = find(panel.widget, css_class)
    assert widget is not None, f"no widget with class {css_class}"
    return widget.get_state()


async def sweep(orchestrator, calls=CALLS):
    panel = StatsPanel(orchestrator)
    batch = orchestrator.batch(calls, on_update=panel.on_update)
    panel.watch(batch)
    await batch
    panel.refresh()
    return panel


SANITIZE = Path(__file__).resolve().parents[2] / "notebooks" / "sanitize.cfg"


def sanitize_rules():
    """The rules nbval applies to the tutorials' outputs, as (pattern, replacement)."""
    return get_sanitize_patterns(SANITIZE.read_text())


def number_rules():
    """Only the rules for durations and speedups, which vary between two identical runs."""
    return [(pattern, replacement) for pattern, replacement in sanitize_rules() if replacement in ("T", "Sx")]


async def test_second_sweep_is_all_hits_and_complete(orchestrator):
    first = await sweep(orchestrator)
    second = await sweep(orchestrator)

    bar = state(second, "cfnb-progress")
    assert bar["value"] == bar["max"] == len(CALLS)
    assert bar["bar_style"] == "success"
    counts = state(second, "cfnb-progress-text")["value"]
    assert f"{len(CALLS)}/{len(CALLS)} done" in counts
    assert '<span class="cfnb-sweep-hit-rate">100.0 % hit rate</span>' in counts
    assert '<span class="cfnb-sweep-hit-rate">0.0 % hit rate</span>' in state(first, "cfnb-progress-text")["value"]
    # The cache figures are the orchestrator's totals: one miss then one hit per call.
    cache = state(second, "cfnb-stats")["value"]
    assert "50.0 %" in cache and f"{len(CALLS)} memory, 0 file" in cache
    assert orchestrator.stats().hits == len(CALLS)
    latency = state(second, "cfnb-latency")["value"]
    assert "code-reviewer" in latency and "explainer" in latency


async def test_new_orchestrator_on_same_cache_file_shows_full_hit_rate(server):
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="test") as first:
        await sweep(first)
    async with AsyncAgentOrchestrator(base_url=server.url, api_key="test") as second:
        panel = await sweep(second)
    cache = state(panel, "cfnb-stats")["value"]
    assert "100.0 %" in cache and f"0 memory, {len(CALLS)} file" in cache
    assert "cfnb-tampered" not in cache


async def test_root_and_parts_carry_stable_classes(orchestrator):
    panel = await sweep(orchestrator)
    assert "cfnb-panel" in panel.widget.get_state()["_dom_classes"]
    for css_class in ("cfnb-stats", "cfnb-sweep", "cfnb-progress", "cfnb-progress-text", "cfnb-latency"):
        assert find(panel.widget, css_class) is not None, css_class
    cards = state(panel, "cfnb-stats")["value"]
    for css_class in (
        "cfnb-hit-rate",
        "cfnb-hits",
        "cfnb-misses",
        "cfnb-speedup",
        "cfnb-time-saved",
        "cfnb-tokens-saved",
        "cfnb-cost-saved",
    ):
        assert f'class="cfnb-stat {css_class}"' in cards


def test_sweep_part_is_hidden_until_a_batch_is_watched(orchestrator):
    panel = StatsPanel(orchestrator)
    assert find(panel.widget, "cfnb-sweep").layout.display == "none"
    panel.watch(orchestrator.batch(CALLS))
    assert find(panel.widget, "cfnb-sweep").layout.display is None


def test_updates_are_throttled(orchestrator, clock):
    counting = Counting(orchestrator)
    panel = StatsPanel(counting, timer=clock, interval=0.1)
    batch = orchestrator.batch(CALLS)
    panel.watch(batch)
    counting.reads = 0
    for _ in range(500):  # 500 updates over one second
        clock.now += 0.002
        panel.on_update(batch)
    assert 9 <= counting.reads <= 11


def test_update_from_another_batch_is_ignored(orchestrator, clock):
    counting = Counting(orchestrator)
    panel = StatsPanel(counting, timer=clock)
    panel.watch(orchestrator.batch(CALLS))
    counting.reads = 0
    panel.on_update(orchestrator.batch(CALLS))
    assert counting.reads == 0


async def test_last_call_redraws_without_refresh(orchestrator, clock):
    # A background sweep gets no refresh() from the magic: the final state must still show.
    counting = Counting(orchestrator)
    panel = StatsPanel(counting, timer=clock)  # the clock never moves: only forced redraws happen
    batch = orchestrator.batch(CALLS, on_update=panel.on_update)
    panel.watch(batch)
    await batch.start().settle()
    bar = state(panel, "cfnb-progress")
    assert bar["value"] == bar["max"] == len(CALLS)
    assert f"{len(CALLS)}/{len(CALLS)} done" in state(panel, "cfnb-progress-text")["value"]
    assert counting.reads <= 4  # watch, the last call, and at most a trailing redraw or two


async def test_quiet_spell_gets_a_trailing_redraw(orchestrator, clock, until):
    counting = Counting(orchestrator)
    panel = StatsPanel(counting, timer=clock, interval=0.05)
    batch = orchestrator.batch(CALLS)
    panel.watch(batch)
    counting.reads = 0
    for _ in range(20):
        panel.on_update(batch)  # all inside one interval: throttled
    assert counting.reads == 0
    await until(lambda: counting.reads >= 1)
    assert counting.reads == 1


async def test_the_panel_shows_the_pace_and_the_limit_it_rides():
    limited = LocalServer(rate_limits=RateLimits(requests=30, minute=1.0)).start()
    async with AsyncAgentOrchestrator(base_url=limited.url, api_key="test", enable_cache=False) as orchestrator:
        panel = await sweep(orchestrator)
        bundle = panel._repr_mimebundle_()
    limited.stop()
    assert re.search(r"Pace: [\d.]+ requests/s, riding 30 requests per ", bundle["text/plain"])
    assert "cfnb-pace" in bundle["text/html"] and "riding 30 requests" in state(panel, "cfnb-pace")["value"]


async def test_no_pace_line_where_no_limits_are_reported(orchestrator):
    panel = await sweep(orchestrator)
    assert "Pace:" not in panel._repr_mimebundle_()["text/plain"]
    assert state(panel, "cfnb-pace")["value"] == ""


def test_unpriced_answers_are_said_beside_the_cost_saved():
    stats = CacheStats(hits=3, cost_saved=0.25, unpriced=2)
    cost = next(item for item in stat_items(stats) if item[0] == "cfnb-cost-saved")
    assert cost[2:] == ("$0.2500", "estimated; 2 answers of models without a price not counted")
    assert "(estimated; 2 answers" in summary_text(stats, None)


def test_median_latency_per_agent_skips_unfinished_and_cancelled():
    results = [
        AgentResult("a", True, latency=1.0),
        AgentResult("b", True, latency=5.0),
        None,
        AgentResult("a", True, latency=3.0),
        AgentResult("a", False, error=RuntimeError("boom"), latency=10.0),
        AgentResult("b", False, error=asyncio.CancelledError(), latency=0.0),
    ]
    assert [(row.label, row.median, row.finished) for row in rows(results)] == [("a", 3.0, 3), ("b", 5.0, 1)]


def test_a_sweep_over_models_shows_agent_by_model_with_cost_and_live_mean_scores():
    from claude_force_nb import Score

    def scored(model, latency, cost, score):
        return AgentResult(
            "a", True, model=model, latency=latency, original_cost=cost, scores=(Score("grade", score, score >= 0.7),)
        )

    results = [scored("haiku", 1.0, 0.001, 0.5), scored("opus", 2.0, 0.01, 1.0), scored("haiku", 3.0, 0.003, 1.0), None]
    found = rows(results)
    assert found == [Row("a", "haiku", 2.0, 2, 0.002, {"grade": 0.75}), Row("a", "opus", 2.0, 1, 0.01, {"grade": 1.0})]
    assert (
        rows_text(found)
        == "a × haiku 2.000 s (2, $0.0020 each, grade 0.75), a × opus 2.000 s (1, $0.0100 each, grade 1.00)"
    )
    table = rows_html(found)
    assert "<th" in table and "mean grade" in table and "cost / answer" in table
    assert 'text-align:right;white-space:nowrap">2.000 s</td>' in table


class Fixed:
    """Anything with ``stats()``, ``pace()`` and ``spent()`` will do for the panel."""

    def __init__(self, stats: CacheStats):
        self._stats = stats

    def stats(self) -> CacheStats:
        return self._stats

    def pace(self):
        return None

    def spent(self):
        return Spend()


def test_tampered_rows_show_only_when_there_are_some():
    clean = StatsPanel(Fixed(CacheStats()))
    assert "cfnb-tampered" not in state(clean, "cfnb-stats")["value"]
    assert "Tampered" not in clean._repr_mimebundle_()["text/plain"]
    tampered = StatsPanel(Fixed(CacheStats(tampered=2)))
    assert 'class="cfnb-stat cfnb-tampered"' in state(tampered, "cfnb-stats")["value"]
    assert "Tampered rows removed: 2" in tampered._repr_mimebundle_()["text/plain"]


def test_the_team_cache_shows_its_hits_and_state_only_when_there_is_one():
    alone = StatsPanel(Fixed(CacheStats(hits=2, memory_hits=1, file_hits=1)))
    assert "team" not in alone._repr_mimebundle_()["text/plain"].lower()
    team = TeamStatus("db.example.com:5432/answers", False, 12, 0)
    away = StatsPanel(Fixed(CacheStats(hits=3, memory_hits=1, file_hits=1, team_hits=1, team=team)))
    text = away._repr_mimebundle_()["text/plain"]
    assert "(1 memory, 1 file, 1 team)" in text
    assert "Team cache: away (db.example.com:5432/answers; 12 writes queued)" in text
    assert 'class="cfnb-stat cfnb-team"' in state(away, "cfnb-stats")["value"]


async def test_a_panel_on_a_team_cache_counts_hits_from_the_database(server, tmp_path, team_url):
    options = {"base_url": server.url, "api_key": "test", "cache_url": team_url}
    async with AsyncAgentOrchestrator(cache_path=tmp_path / "one.sqlite", **options) as one:
        await one.execute_multiple(CALLS)
    async with AsyncAgentOrchestrator(cache_path=tmp_path / "two.sqlite", **options) as two:
        panel = StatsPanel(two)
        batch = two.batch(CALLS, on_update=panel.on_update)
        panel.watch(batch)
        await batch
        panel.refresh()
        text = panel._repr_mimebundle_()["text/plain"]
    assert f"(0 memory, 0 file, {len(CALLS)} team)" in text and "Team cache: reachable" in text


def test_infinite_speedup_is_shown_as_such():
    text = summary_text(CacheStats(hits=1, memory_hits=1, hit_rate=1.0, speedup=float("inf")), None)
    assert "speedup ∞" in text


async def test_bundle_has_widget_view_and_static_forms(orchestrator):
    panel = await sweep(orchestrator)
    bundle = panel._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == panel.widget.model_id
    html = bundle["text/html"]
    assert html.startswith('<div class="cfnb-panel cfnb-static">')
    assert f'<progress class="cfnb-progress" value="{len(CALLS)}" max="{len(CALLS)}">' in html
    text = bundle["text/plain"]
    assert text.startswith("Agent cache: 0.0 % hit rate (0 memory, 0 file), 0 hits, 7 misses")
    assert "Sweep: 7/7 done, 0 cached, 0.0 % hit rate, 0 failed, 0 cancelled, 0 in flight" in text
    for leak in (panel.widget.model_id, "IPY_MODEL", " object at ", "StatsPanel", "VBox"):
        assert leak not in text and leak not in html
    assert not re.search(r"0x[0-9a-f]{6,}", text + html)


async def test_static_forms_are_stable_across_runs_after_sanitizing(server, tmp_path):
    outputs = []
    for run in range(2):
        async with AsyncAgentOrchestrator(
            base_url=server.url, api_key="test", cache_path=tmp_path / f"run{run}.db"
        ) as orch:
            await sweep(orch)
            panel = await sweep(orch)
            outputs.append(panel._repr_mimebundle_())
    patterns = number_rules()
    for mimetype in ("text/plain", "text/html"):
        first, second = (_sanitize(bundle[mimetype], patterns) for bundle in outputs)
        assert first == second
        assert "Sx" in first
        assert ("Saved: T," if mimetype == "text/plain" else ">T<") in first


async def test_whole_panel_rules_match_first_and_final_display(orchestrator):
    # nbval sees the panel as first displayed; the saved notebook holds the final copy.
    panel = StatsPanel(orchestrator)
    batch = orchestrator.batch(CALLS, on_update=panel.on_update)
    panel.watch(batch)
    before = panel._repr_mimebundle_()
    await batch
    panel.refresh()
    after = panel._repr_mimebundle_()
    patterns = sanitize_rules()
    for mimetype in ("text/plain", "text/html"):
        assert before[mimetype] != after[mimetype]
        assert _sanitize(before[mimetype], patterns) == _sanitize(after[mimetype], patterns)


def _sanitize(text, patterns):
    for pattern, replacement in patterns:
        text = re.sub(pattern, replacement, text)
    return text


@pytest.fixture
def shell():
    return InteractiveShell.instance()


async def test_display_then_refresh_rewrites_the_stored_copy(shell, orchestrator):
    panel = StatsPanel(orchestrator)
    batch = orchestrator.batch(CALLS, on_update=panel.on_update)
    panel.watch(batch)
    with capture_output() as captured:
        display(panel)
        await batch
        panel.refresh()
        panel.refresh()  # nothing changed: no second update
    first, *updates = captured.outputs
    assert "Sweep: 0/7 done" in first.data["text/plain"]
    assert first.data[WIDGET_VIEW]["model_id"] == panel.widget.model_id
    assert len(updates) == 1
    assert "Sweep: 7/7 done" in updates[0].data["text/plain"]
    assert updates[0].data[WIDGET_VIEW] == first.data[WIDGET_VIEW]


def test_agents_magic_shows_the_panel_and_its_final_numbers(shell, server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    shell.run_line_magic("load_ext", "claude_force_nb")
    try:
        for _ in range(2):
            with capture_output() as captured:
                shell.run_cell_magic("agents", "code-reviewer explainer", "def f(): pass")
    finally:
        shell.run_line_magic("unload_ext", "claude_force_nb")
    panels = [o.data["text/plain"] for o in captured.outputs if o.data["text/plain"].startswith("Agent cache:")]
    assert len(panels) == 2  # the first display and its final rewrite
    assert "Sweep: 2/2 done, 2 cached, 100.0 % hit rate, 0 failed, 0 cancelled, 0 in flight" in panels[-1]


def test_agent_stats_shows_the_last_sweep(shell, server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    shell.run_line_magic("load_ext", "claude_force_nb")
    try:
        with capture_output():
            shell.run_cell_magic("agents", "code-reviewer", "def g(): pass")
        panel = shell.run_line_magic("agent", "stats")
    finally:
        shell.run_line_magic("unload_ext", "claude_force_nb")
    assert isinstance(panel, StatsPanel)
    assert "Sweep: 1/1 done" in panel._repr_mimebundle_()["text/plain"]


def test_closed_panel_still_has_its_static_forms(orchestrator):
    panel = StatsPanel(orchestrator)
    panel.close()
    bundle = panel._repr_mimebundle_()
    assert WIDGET_VIEW not in bundle
    assert bundle["text/plain"].startswith("Agent cache:")
