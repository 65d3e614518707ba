"""Confidence intervals for scores that come in clusters: several samples of one item are not independent.

The interval is a percentile bootstrap over items (a cluster bootstrap): each
resample draws items with replacement and keeps every sample of a drawn item
together, so K samples of one item count as one item, never as K independent
observations. The estimate is the mean of the items' means (each item weighs
the same, however many of its samples were scored). Resamples come from a
fixed seed, so a notebook shows the same interval on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
EXTRA = "Evaluation needs {}: pip install 'claude-force-nb[eval]' (pandas, numpy and matplotlib)."
# Resamples drawn at a time: bounds the index array to CHUNK x items.
_CHUNK = 250


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean over ``items`` and its ``level`` confidence interval (NaN without items; zero width with one)."""

    mean: float
    low: float
    high: float
    items: int
    level: float = LEVEL


def clustered_mean(
    clusters: Sequence[Sequence[float]], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The mean of the clusters' means, with a cluster-bootstrap interval (see the module docstring)."""
    means = [sum(values) / len(values) for values in clusters if values]
    return bootstrap(means, level=level, resamples=resamples, seed=seed)


def bootstrap(
    values: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """The mean of ``values`` (one per item) with a percentile-bootstrap interval."""
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError(EXTRA.format("numpy")) from exc

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}.")
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    if float(data.min()) == float(data.max()):  # one item, or all alike: exactly that value, no spread
        value = float(data[0])
        return Interval(value, value, value, int(data.size), level)
    mean = float(data.mean())
    rng = np.random.default_rng(seed)
    drawn = []
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        drawn.append(data[rng.integers(0, data.size, size=(count, data.size))].mean(axis=1))
    low, high = np.quantile(np.concatenate(drawn), [(1 - level) / 2, (1 + level) / 2])
    return Interval(mean, float(low), float(high), int(data.size), level)
