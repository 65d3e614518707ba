"""What a scored sweep adds up to: tidy score rows, a summary per agent and model, paired comparisons, a gate.

Everything here reads results and returns plain records (pandas is the
caller's business). Costs and latencies are what each answer took when it
was made, so a re-run served from the cache compares models as the first
run did; a grader's cost is kept apart from the answer's.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from .._errors import QualityGateError
from .._models import record_of
from .._results import AgentResult, scorer_names
from .stats import LEVEL, Interval, bootstrap, clustered_mean

SCORE_COLUMNS = (
    "agent",
    "model",
    "item",
    "sample",
    "scorer",
    "score",
    "passed",
    "reason",
    "error",
    "cost",
    "latency",
    "scorer_cost",
)
SUMMARY_COLUMNS = (
    "agent",
    "model",
    "scorer",
    "items",
    "scored",
    "mean",
    "ci_low",
    "ci_high",
    "pass_rate",
    "errors",
    "cost_per_item",
    "median_latency",
)
# Items two sides must share before a comparison names a winner: a bootstrap over fewer says little.
MIN_ITEMS = 5
COMPARE_COLUMNS = ("scorer", "a", "b", "mean_a", "mean_b", "difference", "ci_low", "ci_high", "items", "verdict")


def score_records(results: Iterable[AgentResult]) -> list[dict[str, Any]]:
    """One row per answer and scorer: the tidy form (``scores`` of a sweep)."""
    return [
        {
            "agent": r.agent_name,
            "model": model_of(r),
            "item": r.item,
            "sample": r.sample,
            "scorer": s.scorer,
            "score": s.score,
            "passed": s.passed,
            "reason": s.reason,
            "error": s.error,
            "cost": r.original_cost,
            "latency": r.original_latency if r.success else r.latency,
            "scorer_cost": s.cost,
        }
        for r in results
        for s in r.scores
    ]


def summary_records(results: Sequence[AgentResult], *, level: float = LEVEL) -> list[dict[str, Any]]:
    """One row per agent, model and scorer: mean with its interval (clustered by item), pass rate, cost, latency."""
    cells: dict[tuple[str, str], list[AgentResult]] = defaultdict(list)
    for r in results:
        cells[r.agent_name, model_of(r)].append(r)
    rows = []
    for (agent, model), members in cells.items():
        items = {item_key(r) for r in members}
        costs = [r.original_cost for r in members]
        cost = None if any(c is None for c in costs) else sum(c for c in costs if c is not None) / len(items)
        latencies = [r.original_latency for r in members if r.success]
        for name in scorer_names(members):
            scores = [(r, s) for r in members for s in r.scores if s.scorer == name]
            interval = clustered_mean(_clusters((r, s.score) for r, s in scores if s.score is not None), level=level)
            passes = _clusters((r, float(bool(s.passed))) for r, s in scores if s.passed is not None)
            rows.append(
                {
                    "agent": agent,
                    "model": model,
                    "scorer": name,
                    "items": len(items),
                    "scored": sum(s.score is not None for _, s in scores),
                    "mean": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "pass_rate": statistics.fmean(map(statistics.fmean, passes)) if passes else math.nan,
                    "errors": sum(s.error is not None for _, s in scores),
                    "cost_per_item": cost,
                    "median_latency": statistics.median(latencies) if latencies else math.nan,
                }
            )
    return rows


def compare_records(
    results: Sequence[AgentResult], a: str | tuple[str, str], b: str | tuple[str, str], *, level: float = LEVEL
) -> list[dict[str, Any]]:
    """Per scorer, ``a`` minus ``b`` on the items both answered: a paired difference with its interval.

    ``a`` and ``b`` name agents, models, or ``(agent, model)`` cells. Each
    item's difference is the mean of ``a``'s scores of it minus ``b``'s (over
    samples, and over the other agents or models); the interval is a bootstrap
    over items.
    """
    side_a, side_b = _side(results, a), _side(results, b)
    rows = []
    for name in scorer_names(results):
        means_a, means_b = _item_means(side_a, name), _item_means(side_b, name)
        shared = [key for key in means_a if key in means_b]
        interval = bootstrap([means_a[key] - means_b[key] for key in shared], level=level)
        rows.append(
            {
                "scorer": name,
                "a": _label(a),
                "b": _label(b),
                "mean_a": statistics.fmean(means_a[k] for k in shared) if shared else math.nan,
                "mean_b": statistics.fmean(means_b[k] for k in shared) if shared else math.nan,
                "difference": interval.mean,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "items": interval.items,
                "verdict": _verdict(interval, _label(a), _label(b)),
            }
        )
    return rows


def require(
    results: Sequence[AgentResult],
    *,
    min_score: float | None = None,
    min_pass_rate: float | None = None,
    scorer: str | None = None,
) -> None:
    """Raise :class:`QualityGateError` naming each agent × model cell below the bar, or with unscored answers."""
    if min_score is None and min_pass_rate is None:
        raise ValueError("require() needs a bar: min_score=, min_pass_rate= or both (scores run from 0 to 1).")
    names = scorer_names(results)
    if not names:
        raise QualityGateError("Nothing to hold to a bar: these results have no scores (run with --grade or --check).")
    if scorer is not None and scorer not in names:
        raise ValueError(f"No scorer named {scorer!r}; these results have {', '.join(names)}.")
    below = []
    for row in summary_records(results):
        if scorer is not None and row["scorer"] != scorer:
            continue
        cell = f"{row['agent']} × {row['model']} · {row['scorer']}"
        if row["errors"]:
            below.append(f"{cell}: {row['errors']} of {row['scored'] + row['errors']} answers not scored")
            if not row["scored"]:
                continue
        if min_score is not None and not row["mean"] >= min_score:
            below.append(
                f"{cell}: mean {row['mean']:.2f} (95 % CI {row['ci_low']:.2f}-{row['ci_high']:.2f}) < {min_score}"
            )
        if min_pass_rate is not None and not row["pass_rate"] >= min_pass_rate:
            below.append(f"{cell}: pass rate {row['pass_rate']:.0%} < {min_pass_rate:.0%}")
    if below:
        raise QualityGateError(f"Quality gate failed, {len(below)} below the bar:\n  " + "\n  ".join(below))


def model_of(result: AgentResult) -> str:
    """The model a result was asked of: the API answers an alias with a dated snapshot, which files under it."""
    record = record_of(result.model)
    return record.id if record is not None else result.model


def item_key(result: AgentResult) -> Hashable:
    """What identifies a result's item across agents and models: the item itself, else its task."""
    item = result.item if result.item is not None else result.task
    try:
        hash(item)
    except TypeError:  # a dict, a list, a pandas row
        return repr(item)
    return item


def _clusters(pairs: Iterable[tuple[AgentResult, float | None]]) -> list[list[float]]:
    return list(_keyed(pairs).values())


def _item_means(results: Iterable[AgentResult], scorer: str) -> dict[Hashable, float]:
    return {
        key: statistics.fmean(values)
        for key, values in _keyed((r, s.score) for r in results for s in r.scores if s.scorer == scorer).items()
        if values
    }


def _keyed(pairs: Iterable[tuple[AgentResult, float | None]]) -> dict[Hashable, list[float]]:
    grouped: dict[Hashable, list[float]] = defaultdict(list)
    for result, value in pairs:
        if value is not None:
            grouped[item_key(result)].append(value)
    return grouped


def _side(results: Sequence[AgentResult], side: str | tuple[str, str]) -> list[AgentResult]:
    agents = {r.agent_name for r in results}
    models = {model_of(r) for r in results}
    if isinstance(side, tuple):
        agent, model = side
        chosen = [r for r in results if r.agent_name == agent and model_of(r) == model]
    elif side in agents and side in models:
        raise ValueError(f"{side!r} names both an agent and a model; pass (agent, model).")
    elif side in agents:
        chosen = [r for r in results if r.agent_name == side]
    elif side in models:
        chosen = [r for r in results if model_of(r) == side]
    else:
        chosen = []
    if not chosen:
        raise ValueError(
            f"Nothing answered as {side!r}: name an agent ({', '.join(sorted(agents))}), "
            f"a model ({', '.join(sorted(models))}) or an (agent, model) pair."
        )
    return chosen


def _label(side: str | tuple[str, str]) -> str:
    return " × ".join(side) if isinstance(side, tuple) else side


def _verdict(interval: Interval, a: str, b: str) -> str:
    if interval.items < MIN_ITEMS:
        return f"too few items in common to tell ({interval.items})"
    if interval.low > 0:
        return f"{a} better"
    if interval.high < 0:
        return f"{b} better"
    return "no clear difference"
