"""A live panel of cache statistics and sweep progress, built on ipywidgets.

``StatsPanel(orchestrator)`` shows ``orchestrator.stats()`` (the cache since
the orchestrator was created) and, after ``watch(batch)``, that sweep's
``batch.progress``, its hit rate (cached / (succeeded + failed)) and a table
of median latency per agent (per agent × model, with cost and live mean
scores, where the sweep has them: :mod:`.cells`). It keeps no counts of its own: every number comes
from those two objects, so Python code can read the same values.

Pass ``panel.on_update`` as the batch's ``on_update``. It redraws at most
every ``interval`` seconds, at once when the last call finishes, and once
more after a quiet spell so a stalled sweep never shows stale counts. The
calls themselves do not slow down (``bench/panel.py``). ``refresh()`` redraws
now.

Where widgets cannot run (nbconvert HTML, GitHub, nbval) the ``text/plain``
and ``text/html`` parts of the display carry the same numbers, in fixed words
and formats (``notebooks/sanitize.cfg`` says how tests compare them). Shown
through IPython's ``display``, the output gets a display id and the stored
copy is rewritten once the sweep ends, so saved notebooks hold the final
numbers.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .._api.pacing import Pace
from .._cache import CacheStats, TeamStatus
from .._spend import Spend
from .._sweep import Batch, Progress
from .cells import rows, rows_html, rows_text

if TYPE_CHECKING:
    from .._orchestrator import AsyncAgentOrchestrator

DEFAULT_INTERVAL = 0.1  # seconds between live redraws
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

_CARD = (
    "display:inline-block;vertical-align:top;min-width:6.5em;margin:0 .4em .4em 0;padding:.25em .6em;"
    "border-radius:4px;background:var(--jp-layout-color2,#f2f2f2)"
)
_LABEL = "font-size:75%;opacity:.75"
_VALUE = "font-size:125%;font-weight:600"
_CELL = "padding:0 1em 0 0;text-align:left"


def seconds(value: float) -> str:
    """Always seconds with three decimals, so one regex normalises them."""
    return f"{value:.3f} s"


def speedup(value: float) -> str:
    return f"{value:.1f}x" if math.isfinite(value) else "∞"


def percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def sweep_hit_rate(progress: Progress) -> float:
    """Cached answers over calls that looked the cache up and ended (cancelled ones did not end)."""
    ended = progress.succeeded + progress.failed
    return progress.cached / ended if ended else 0.0


def stat_items(stats: CacheStats, spend: Spend | None = None) -> list[tuple[str, str, str, str]]:
    """(css class, label, value, detail) for each figure shown: the cache's, then what live answers cost."""
    items = [
        ("cfnb-hit-rate", "hit rate", percent(stats.hit_rate), tiers_text(stats)),
        ("cfnb-hits", "hits", str(stats.hits), ""),
        ("cfnb-misses", "misses", str(stats.misses), ""),
        ("cfnb-speedup", "speedup", speedup(stats.speedup), ""),
        ("cfnb-time-saved", "time saved", seconds(stats.time_saved), ""),
        ("cfnb-tokens-saved", "tokens saved", str(stats.tokens_saved), ""),
        ("cfnb-cost-saved", "cost saved", f"${stats.cost_saved:.4f}", _cost_note(stats)),
    ]
    if stats.tampered:
        items.append(("cfnb-tampered", "tampered rows", str(stats.tampered), "failed their signature, removed"))
    if stats.foreign:
        items.append(("cfnb-foreign", "another secret's rows", str(stats.foreign), "kept, not used"))
    if stats.dropped:
        items.append(("cfnb-dropped", "not saved", str(stats.dropped), "answers the file did not take"))
    if stats.trimmed:
        items.append(("cfnb-trimmed", "trimmed", str(stats.trimmed), "oldest answers, to keep the file in bounds"))
    if stats.team is not None:
        items.append(("cfnb-team", "team cache", *_team_parts(stats.team)))
    if spend is not None:
        items.append(("cfnb-spent", "spent", f"${spend.cost:.4f}", _spend_note(spend)))
    return items


def tiers_text(stats: CacheStats) -> str:
    """Where the hits were found: memory and file, and the team database when there is one."""
    text = f"{stats.memory_hits} memory, {stats.file_hits} file"
    return f"{text}, {stats.team_hits} team" if stats.team is not None else text


def _team_parts(team: TeamStatus) -> tuple[str, str]:
    """The team database's state, and its detail: where, and the writes waiting for it."""
    detail = f"{team.where}; {team.queued} writes queued"
    if team.dropped:
        detail += f", {team.dropped} dropped"
    return ("reachable" if team.reachable else "away"), detail


def _spend_note(spend: Spend) -> str:
    calls = "1 call" if spend.calls == 1 else f"{spend.calls} calls"
    note = f"{calls}, {spend.input_tokens + spend.output_tokens} tokens"
    return f"{note}; {spend.unpriced} without a price" if spend.unpriced else note


def remote_text(batch: Batch | None) -> str | None:
    """The Message Batches line of a --batch sweep; None for other sweeps."""
    return batch.remote.describe() if batch is not None and batch.remote is not None else None


def budget_text(batch: Batch) -> str | None:
    """The sweep's budget and what it spent of it; None without one."""
    budget = batch.budget
    if budget is None:
        return None
    return f"budget ${budget.limit:.2f}, ${budget.spent:.4f} spent"


def _cost_note(stats: CacheStats) -> str:
    if not stats.unpriced:
        return "estimated"
    return f"estimated; {stats.unpriced} answers of models without a price not counted"


def progress_parts(progress: Progress) -> list[tuple[str, str]]:
    """(css class, text) for each count of the sweep line; incomplete answers only when there are some."""
    parts = [
        ("cfnb-done", f"{progress.finished}/{progress.total} done"),
        ("cfnb-cached", f"{progress.cached} cached"),
        ("cfnb-sweep-hit-rate", f"{percent(sweep_hit_rate(progress))} hit rate"),
        ("cfnb-failed", f"{progress.failed} failed"),
        ("cfnb-cancelled", f"{progress.cancelled} cancelled"),
        ("cfnb-in-flight", f"{progress.running} in flight"),
    ]
    if progress.incomplete:
        parts.insert(4, ("cfnb-incomplete", f"{progress.incomplete} incomplete (truncated, refused or paused)"))
    return parts


def stats_html(stats: CacheStats, spend: Spend | None = None) -> str:
    cards = "".join(
        f'<div class="cfnb-stat {cls}" style="{_CARD}"><div style="{_LABEL}">{label}</div>'
        f'<div class="cfnb-value" style="{_VALUE}">{html.escape(value)}</div>'
        + (f'<div style="{_LABEL}">{html.escape(detail)}</div>' if detail else "")
        + "</div>"
        for cls, label, value, detail in stat_items(stats, spend)
    )
    return f"<div><b>Agent cache</b> <small>(since start)</small></div><div>{cards}</div>"


def progress_html(progress: Progress, budget: str | None = None) -> str:
    parts = progress_parts(progress) + ([("cfnb-budget", budget)] if budget else [])
    return " · ".join(f'<span class="{cls}">{html.escape(text)}</span>' for cls, text in parts)


def pace_text(pace: Pace | None) -> str | None:
    """The pace line, when the API reports rate limits (or refused a call); None otherwise."""
    if pace is None or not (pace.limits or pace.rate_limited):
        return None
    return f"Pace: {pace.describe()}"


def summary_text(stats: CacheStats, batch: Batch | None, pace: Pace | None = None, spend: Spend | None = None) -> str:
    """The text/plain form: fixed words and numbers."""
    lines = [
        (
            f"Agent cache: {percent(stats.hit_rate)} hit rate ({tiers_text(stats)}), "
            f"{stats.hits} hits, {stats.misses} misses"
        ),
        (
            f"Saved: {seconds(stats.time_saved)}, {stats.tokens_saved} tokens, ${stats.cost_saved:.4f} "
            f"({_cost_note(stats)}); speedup {speedup(stats.speedup)}"
        ),
    ]
    if stats.tampered:
        lines.append(f"Tampered rows removed: {stats.tampered}")
    if stats.foreign:
        lines.append(f"Rows of another secret (kept, not used): {stats.foreign}")
    if stats.dropped:
        lines.append(f"Answers not saved to the file (kept in memory): {stats.dropped}")
    if stats.trimmed:
        lines.append(f"Answers trimmed to keep the file within its bounds: {stats.trimmed}")
    if stats.team is not None:
        state, detail = _team_parts(stats.team)
        lines.append(f"Team cache: {state} ({detail})")
    if spend is not None:
        lines.append(f"Spent: ${spend.cost:.4f} ({_spend_note(spend)})")
    if batch is not None:
        budget = budget_text(batch)
        parts = [text for _, text in progress_parts(batch.progress)] + ([budget] if budget else [])
        lines.append("Sweep: " + ", ".join(parts))
        lines.append(f"Median latency: {rows_text(rows(batch.results)) or 'no calls finished yet'}")
    remote = remote_text(batch)
    if remote:
        lines.append(remote)
    paced = pace_text(pace)
    if paced:
        lines.append(paced)
    return "\n".join(lines)


def summary_html(stats: CacheStats, batch: Batch | None, pace: Pace | None = None, spend: Spend | None = None) -> str:
    """The text/html form, for renderers without widgets."""
    parts = [stats_html(stats, spend)]
    if batch is not None:
        progress = batch.progress
        parts.append(
            f'<div class="cfnb-sweep"><b>Sweep</b><br><progress class="cfnb-progress" value="{progress.finished}" '
            f'max="{progress.total}"></progress> <span class="cfnb-progress-text">'
            f"{progress_html(progress, budget_text(batch))}</span>"
            f"{rows_html(rows(batch.results))}</div>"
        )
    remote = remote_text(batch)
    if remote:
        parts.append(f'<div class="cfnb-remote"><small>{html.escape(remote)}</small></div>')
    paced = pace_text(pace)
    if paced:
        parts.append(f'<div class="cfnb-pace"><small>{html.escape(paced)}</small></div>')
    return f'<div class="cfnb-panel cfnb-static">{"".join(parts)}</div>'


class StatsPanel:
    """Cache statistics and, for a watched sweep, its progress; live in Jupyter.

    >>> panel = StatsPanel(orchestrator)
    >>> batch = orchestrator.batch(calls, on_update=panel.on_update)
    >>> panel.watch(batch); display(panel); await batch; panel.refresh()
    """

    def __init__(
        self,
        orchestrator: AsyncAgentOrchestrator,
        *,
        interval: float = DEFAULT_INTERVAL,
        timer: Callable[[], float] = time.monotonic,
    ):
        self.orchestrator = orchestrator
        self.batch: Batch | None = None
        self.interval = interval
        self._timer = timer
        self._last = -math.inf
        self._pending: asyncio.TimerHandle | None = None
        self._display_id = uuid.uuid4().hex
        self._shown = False
        self._published: dict[str, str] | None = None

        self._stats = widgets.HTML()
        self._stats.add_class("cfnb-stats")
        self._bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="16em"))
        self._bar.add_class("cfnb-progress")
        self._counts = widgets.HTML()
        self._counts.add_class("cfnb-progress-text")
        self._latency = widgets.HTML()
        self._latency.add_class("cfnb-latency")
        self._pace = widgets.HTML()
        self._pace.add_class("cfnb-pace")
        heading = widgets.HTML("<b>Sweep</b>")
        self._sweep = widgets.VBox(
            [heading, widgets.HBox([self._bar, self._counts]), self._latency], layout=widgets.Layout(display="none")
        )
        self._sweep.add_class("cfnb-sweep")
        self.widget = widgets.VBox([self._stats, self._sweep, self._pace])
        self.widget.add_class("cfnb-panel")
        self._redraw()

    def watch(self, batch: Batch) -> StatsPanel:
        """Show this batch's progress from now on."""
        self.batch = batch
        self._sweep.layout.display = None
        self.refresh()
        return self

    def on_update(self, batch: Batch) -> None:
        """Batch callback: cheap unless a redraw is due."""
        if batch is not self.batch:
            return
        now = self._timer()
        if None not in batch.results:
            self.refresh()  # the last call finished: a background sweep gets no other final redraw
        elif now - self._last >= self.interval:
            self._redraw(now)
        elif self._pending is None:
            self._schedule(self.interval - (now - self._last))

    def refresh(self) -> None:
        """Redraw now; once the sweep has ended, also rewrite the displayed static copy."""
        self._cancel_pending()
        self._redraw()
        if self._shown and (self.batch is None or None not in self.batch.results):
            bundle = self._static_bundle()
            if bundle != self._published:
                from IPython.display import update_display

                self._published = bundle
                update_display({**self._view(), **bundle}, raw=True, display_id=self._display_id)

    def republish(self) -> None:
        """Refresh and rewrite the stored copy even if unchanged, from the cell running now.

        A background sweep's own last redraw belongs to the cell that started
        it, which a saved notebook no longer listens to; the cell that waits
        for the sweep calls this instead.
        """
        self._published = None
        self.refresh()

    def close(self) -> None:
        """Close the widgets (their views disappear from the page)."""
        self._cancel_pending()
        _close_tree(self.widget)

    def _redraw(self, now: float | None = None) -> None:
        self._last = self._timer() if now is None else now
        stats = self.orchestrator.stats()
        self._stats.value = stats_html(stats, self.orchestrator.spent())
        notes = [text for text in (remote_text(self.batch), pace_text(self.orchestrator.pace())) if text]
        self._pace.value = "<br>".join(f"<small>{html.escape(text)}</small>" for text in notes)
        if self.batch is None:
            return
        progress = self.batch.progress
        with self._bar.hold_sync():
            self._bar.max = max(progress.total, 1)
            self._bar.value = progress.finished if progress.total else 1
            self._bar.bar_style = _bar_style(progress)
        self._counts.value = progress_html(progress, budget_text(self.batch))
        self._latency.value = rows_html(rows(self.batch.results))

    def _schedule(self, delay: float) -> None:
        # Redraw after the quiet spell, so the last throttled update is not lost.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = loop.call_later(max(delay, 0.0), self._trailing)

    def _trailing(self) -> None:
        self._pending = None
        self._redraw()

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _view(self) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_() if self.widget._repr_mimebundle_ else {}
        return {WIDGET_VIEW: bundle[WIDGET_VIEW]} if WIDGET_VIEW in bundle else {}

    def _static_bundle(self) -> dict[str, str]:
        orchestrator = self.orchestrator
        stats, pace, spend = orchestrator.stats(), orchestrator.pace(), orchestrator.spent()
        return {
            "text/plain": summary_text(stats, self.batch, pace, spend),
            "text/html": summary_html(stats, self.batch, pace, spend),
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The widget view, with text and HTML forms for renderers without widgets."""
        return {**self._view(), **self._static_bundle()}

    def _ipython_display_(self) -> None:
        # Displayed under a display id so refresh() can rewrite the stored copy at the end.
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        self._shown = True
        self._published = {k: v for k, v in bundle.items() if k != WIDGET_VIEW}
        display(bundle, raw=True, display_id=self._display_id)

    def __repr__(self) -> str:
        return f"<StatsPanel {summary_text(self.orchestrator.stats(), self.batch).splitlines()[0]}>"


def _bar_style(progress: Progress) -> str:
    if progress.finished < progress.total:
        return "info"
    if progress.failed or progress.cancelled or progress.incomplete:
        return "danger" if progress.succeeded == 0 else "warning"
    return "success"


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


def live_panel(orchestrator: AsyncAgentOrchestrator) -> StatsPanel:
    """The stats panel, bound to this orchestrator."""
    return StatsPanel(orchestrator)
