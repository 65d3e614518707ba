import random

import pytest

from claude_force_nb._eval.stats import bootstrap, clustered_mean


def test_the_interval_of_a_constant_has_zero_width():
    interval = clustered_mean([[0.7, 0.7], [0.7], [0.7, 0.7, 0.7]])
    assert interval.low == interval.mean == interval.high == pytest.approx(0.7)
    assert interval.items == 3


def test_no_items_give_no_interval_and_one_item_a_point():
    assert bootstrap([]).items == 0
    one = bootstrap([0.25])
    assert (one.low, one.high) == (0.25, 0.25)


def test_the_mean_weighs_each_item_once_however_many_samples_it_has():
    assert clustered_mean([[1.0, 1.0, 1.0, 1.0], [0.0]]).mean == 0.5


def test_the_same_scores_give_the_same_interval_every_run():
    values = [random.Random(1).random() for _ in range(30)]
    assert bootstrap(values) == bootstrap(values)


def test_coverage_on_simulated_items_with_a_known_mean_is_near_95_percent():
    rng = random.Random(7)
    draws, covered = 400, 0
    for _ in range(draws):
        interval = bootstrap([rng.gauss(0.6, 0.2) for _ in range(60)], resamples=1000)
        covered += interval.low <= 0.6 <= interval.high
    assert 0.91 <= covered / draws <= 0.98


def test_samples_of_one_item_are_not_counted_as_independent():
    # Each item has its own level and three samples that agree: the evidence is 40 items, not 120.
    rng = random.Random(11)
    draws, clustered, naive = 300, 0, 0
    for _ in range(draws):
        items = [[level] * 3 for level in (rng.gauss(0.5, 0.2) for _ in range(40))]
        clustered += (lambda i: i.low <= 0.5 <= i.high)(clustered_mean(items, resamples=1000))
        flat = [value for samples in items for value in samples]
        naive += (lambda i: i.low <= 0.5 <= i.high)(bootstrap(flat, resamples=1000))
    assert 0.90 <= clustered / draws <= 0.98
    assert naive / draws < 0.85  # what treating samples as independent would claim


def test_a_level_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="level"):
        bootstrap([0.1, 0.2], level=95)
