"""The picture of a scored sweep: mean score per agent × model, and what each costs for the score it gets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._results import AgentResult, scorer_names
from .analysis import summary_records
from .stats import EXTRA

# The bar the cost chart draws: the grader's pass mark, on the 0-1 scale.
GOOD_ENOUGH = 0.7


def plot(results: Sequence[AgentResult], *, scorer: str | None = None, good_enough: float = GOOD_ENOUGH) -> Any:
    """A matplotlib figure: a heatmap of mean ``scorer`` score per agent × model, each cell with its 95 %
    interval; and cost per item against mean score, the cheapest cell at or above ``good_enough`` marked.
    ``scorer`` defaults to the last one, the grade when there is one. Returned (and not left open), so it
    shows once and can be saved."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(EXTRA.format("matplotlib")) from exc

    names = scorer_names(results)
    if not names:
        raise ValueError("Nothing to plot: these results have no scores (run with --grade or --check).")
    if scorer is None:
        scorer = names[-1]  # a grade scores after the checks
    elif scorer not in names:
        raise ValueError(f"No scorer named {scorer!r}; these results have {', '.join(names)}.")
    rows = [row for row in summary_records(results) if row["scorer"] == scorer]
    agents = list(dict.fromkeys(row["agent"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    cell = {(row["agent"], row["model"]): row for row in rows}

    figure, (matrix, costs) = plt.subplots(1, 2, figsize=(11, 0.9 * len(agents) + 3), layout="constrained")
    plt.close(figure)  # shown by being returned; left open, the inline backend would show it twice
    means = [[cell[a, m]["mean"] if (a, m) in cell else math.nan for m in models] for a in agents]
    image = matrix.imshow(means, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    matrix.set_xticks(range(len(models)), models, rotation=20, ha="right")
    matrix.set_yticks(range(len(agents)), agents)
    for y, agent in enumerate(agents):
        for x, model in enumerate(models):
            row = cell.get((agent, model))
            if row is not None and not math.isnan(row["mean"]):
                label = f"{row['mean']:.2f}\n[{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
                matrix.text(x, y, label, ha="center", va="center", fontsize=9)
    matrix.set_title(f"mean {scorer} (95 % CI)")
    figure.colorbar(image, ax=matrix, shrink=0.8)

    priced = [row for row in rows if row["cost_per_item"] is not None and not math.isnan(row["mean"])]
    for row in priced:
        below, above = row["mean"] - row["ci_low"], row["ci_high"] - row["mean"]
        costs.errorbar(row["cost_per_item"], row["mean"], yerr=[[below], [above]], fmt="o", capsize=3)
        costs.annotate(
            f"{row['agent']} × {row['model']}",
            (row["cost_per_item"], row["mean"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    costs.axhline(good_enough, color="grey", linestyle="--", linewidth=1)
    good = [row for row in priced if row["mean"] >= good_enough]
    if good:
        best = min(good, key=lambda row: row["cost_per_item"])
        costs.scatter([best["cost_per_item"]], [best["mean"]], s=160, facecolors="none", edgecolors="black")
        costs.set_title(f"cheapest at {good_enough:.2f} or more: {best['agent']} × {best['model']}")
    else:
        costs.set_title(f"no cell reaches {good_enough:.2f}")
    costs.set_xlabel("cost per item, USD (when answered)")
    costs.set_ylabel(f"mean {scorer}")
    costs.set_ylim(-0.05, 1.05)
    return figure
