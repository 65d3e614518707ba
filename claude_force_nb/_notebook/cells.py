"""The panel's table of a running sweep: one row per agent, or per agent × model when the sweep compares models.

Each row has its median latency and finished calls; a sweep over several
models adds what an answer costs (when it was made), and a scored sweep the
mean of each scorer so far, so the comparison fills in as answers arrive.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._eval.analysis import model_of
from .._results import AgentResult

_CELL = "padding:0 1em 0 0;text-align:left"
_NUMBER = "padding:0 1em 0 0;text-align:right;white-space:nowrap"


@dataclass(frozen=True)
class Row:
    """One agent's (or agent × model's) finished calls so far."""

    agent: str
    model: str | None  # None unless the sweep compares models
    median: float  # latency, seconds
    finished: int
    cost: float | None = None  # per answer, when made; None without a price
    means: dict[str, float] = field(default_factory=dict)  # scorer -> mean score so far

    @property
    def label(self) -> str:
        return self.agent if self.model is None else f"{self.agent} × {self.model}"


def rows(results: Sequence[AgentResult | None]) -> list[Row]:
    """The table's rows, in order of first appearance; cancelled calls are left out (they waited, not answered)."""
    finished = [r for r in results if r is not None and not r.cancelled]
    by_model = len({model_of(r) for r in finished}) > 1
    groups: dict[tuple[str, str | None], list[AgentResult]] = {}
    for result in finished:
        groups.setdefault((result.agent_name, model_of(result) if by_model else None), []).append(result)
    found = []
    for (agent, model), members in groups.items():
        costs = [r.original_cost for r in members if r.success]
        scores: dict[str, list[float]] = {}
        for result in members:
            for score in result.scores:
                if score.score is not None:
                    scores.setdefault(score.scorer, []).append(score.score)
        found.append(
            Row(
                agent,
                model,
                statistics.median(r.latency for r in members),
                len(members),
                None if not costs or None in costs else statistics.fmean(c for c in costs if c is not None),
                {name: statistics.fmean(values) for name, values in scores.items()},
            )
        )
    return found


def rows_text(found: list[Row], seconds: str = "{:.3f} s") -> str:
    """One line: each row's median latency and finished calls; cost and scores where the sweep has them."""
    parts = []
    for row in found:
        extra = [f"${row.cost:.4f} each"] if row.model is not None and row.cost is not None else []
        extra += [f"{name} {mean:.2f}" for name, mean in row.means.items()]
        detail = ", ".join([str(row.finished), *extra])
        parts.append(f"{row.label} {seconds.format(row.median)} ({detail})")
    return ", ".join(parts)


def rows_html(found: list[Row], seconds: str = "{:.3f} s") -> str:
    """The table; a note while no call has finished."""
    if not found:
        return '<div class="cfnb-latency"><small>No calls finished yet.</small></div>'
    models = any(row.model is not None for row in found)
    scorers = list(dict.fromkeys(name for row in found for name in row.means))
    heads = [("agent", _CELL)] + ([("model", _CELL)] if models else [])
    heads += [("median latency", _NUMBER), ("finished", _NUMBER)]
    heads += ([("cost / answer", _NUMBER)] if models else []) + [(f"mean {name}", _NUMBER) for name in scorers]
    head = "".join(f'<th style="{style}">{html.escape(name)}</th>' for name, style in heads)
    body = []
    for row in found:
        cells = [(row.agent, _CELL)] + ([(row.model or "", _CELL)] if models else [])
        cells += [(seconds.format(row.median), _NUMBER), (str(row.finished), _NUMBER)]
        if models:
            cells.append(("" if row.cost is None else f"${row.cost:.4f}", _NUMBER))
        cells += [(f"{row.means[name]:.2f}" if name in row.means else "", _NUMBER) for name in scorers]
        body.append(
            "<tr>" + "".join(f'<td style="{style}">{html.escape(text)}</td>' for text, style in cells) + "</tr>"
        )
    return f'<table class="cfnb-latency" style="font-size:90%"><tr>{head}</tr>{"".join(body)}</table>'
