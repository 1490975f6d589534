"""stats: probability of being best, intervals of means, IQM, probability of improvement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats as st

from sweepax.results.stats import (
    bootstrap_best,
    improvement_probability,
    iqm,
    iqm_ci,
    mean_ci,
    normalise_per_env,
    probability_of_improvement,
    reference_range,
    t_interval,
)

CLEAR = np.array(
    [
        [0.0, 0.1, -0.1, 0.05],
        [10.0, 10.1, 9.9, 10.05],  # clearly best
        [1.0, 1.2, np.nan, 0.9],  # one seed missing
        [np.nan] * 4,  # no data at all
    ]
)


def test_bootstrap_best_one_clear_winner_is_certain():
    r = bootstrap_best(CLEAR, n_resamples=2000, seed=0)
    assert r.best == 1
    assert r.probability.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert r.uncertainty_set == (1,)
    assert r.n_seeds.tolist() == [4, 4, 3, 0]
    assert r.mean[:3] == pytest.approx([0.0125, 10.0125, 31 / 30])
    assert math.isnan(r.mean[3]) and math.isnan(r.low[3]) and math.isnan(r.high[3])
    # each config's interval is that of its own finite seeds
    assert (r.low[2], r.high[2]) == pytest.approx(mean_ci([1.0, 1.2, 0.9])[1:])
    assert r.n_resamples == 2000 and r.seed == 0 and r.threshold == 0.05


def test_bootstrap_best_identical_configs_share_the_wins():
    per_seed = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [-5.0, -4.0, -6.0, -5.0]])
    r = bootstrap_best(per_seed, n_resamples=20_000, seed=1)
    assert r.probability[0] == pytest.approx(0.5, abs=0.02)
    assert r.probability[1] == pytest.approx(0.5, abs=0.02)
    assert r.probability[2] == 0.0
    assert r.probability.sum() == pytest.approx(1.0)
    assert sorted(r.uncertainty_set) == [0, 1]
    assert r.best == 0  # equal means: the first


def test_bootstrap_best_close_configs_are_both_uncertain():
    # B is better on average but the seeds overlap: both stay in the set, B more likely
    per_seed = np.array([[1.0, 2.0, 3.0], [1.5, 2.5, 3.5], [-9.0, -9.5, -8.5]])
    r = bootstrap_best(per_seed, n_resamples=5000, seed=0)
    assert r.best == 1 and r.uncertainty_set == (1, 0)
    assert 0.5 < r.probability[1] < 0.95 and r.probability[2] == 0.0


def test_bootstrap_best_is_reproducible_from_its_seed():
    per_seed = np.array([[1.0, 2.0, 3.0], [1.5, 2.5, 0.5], [2.0, 1.0, np.nan]])
    a = bootstrap_best(per_seed, n_resamples=3000, seed=7)
    b = bootstrap_best(per_seed, n_resamples=3000, seed=7)
    c = bootstrap_best(per_seed, n_resamples=3000, seed=8)
    assert np.array_equal(a.probability, b.probability)
    assert a.uncertainty_set == b.uncertainty_set
    assert not np.array_equal(a.probability, c.probability)


def test_bootstrap_best_rejects_too_few_resamples_and_wrong_shape():
    with pytest.raises(ValueError, match="at least 1000"):
        bootstrap_best(CLEAR, n_resamples=999)
    with pytest.raises(ValueError, match=r"dims \(config, seed\)"):
        bootstrap_best(CLEAR[0])


def test_bootstrap_best_without_any_data_has_no_winner():
    r = bootstrap_best(np.full((2, 3), np.nan), n_resamples=1000)
    assert r.best is None and r.uncertainty_set == () and r.probability.tolist() == [0.0, 0.0]


def test_mean_ci_t_interval_by_hand():
    x = [1.0, 2.0, 4.0]
    mean, low, high = mean_ci(x)
    half = 4.302652729911275 * np.std(x, ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert mean == pytest.approx(7 / 3)
    assert (low, high) == pytest.approx((7 / 3 - half, 7 / 3 + half))


def test_mean_ci_bootstrap_methods_are_narrower_than_t_with_three_seeds():
    x = [1.0, 2.0, 4.0]
    _, tl, th = mean_ci(x)
    for method in ("BCa", "percentile"):
        mean, low, high = mean_ci(x, method=method, n_resamples=5000, seed=0)
        assert mean == pytest.approx(7 / 3)
        # a resampled mean never leaves the range of the values
        assert 1.0 <= low < mean < high <= 4.0
        assert tl < low and high < th
        assert mean_ci(x, method=method, n_resamples=5000, seed=0) == (mean, low, high)


def test_mean_ci_degenerate_inputs():
    assert mean_ci([3.0, 3.0, np.nan]) == (3.0, 3.0, 3.0)
    one = mean_ci([np.nan, 2.0])
    assert one.value == 2.0 and math.isnan(one.low) and math.isnan(one.high)
    assert all(math.isnan(v) for v in mean_ci([np.nan]))
    with pytest.raises(ValueError, match="method must be one of"):
        mean_ci([1.0, 2.0], method="normal")


def test_iqm_by_hand():
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # (runs, tasks) pooled; NaN dropped: 12 values, 3 trimmed at each end
    x = np.array([[9.0, 1.0, 5.0], [2.0, 8.0, 4.0], [7.0, 3.0, 6.0], [10.0, 0.0, 11.0]])
    assert iqm(x) == pytest.approx((3 + 4 + 5 + 6 + 7 + 8) / 6)
    assert iqm([1.0, np.nan, 3.0, 2.0, 100.0]) == pytest.approx(2.5)
    assert math.isnan(iqm([np.nan]))


def test_iqm_ci_resamples_within_each_env():
    # every stratified resample keeps 4 zeros and 4 ones: the IQM is 0.5 in all of them
    # (resampling the 8 runs together would not)
    assert iqm_ci([np.zeros(4), np.ones(4)], n_resamples=2000) == (0.5, 0.5, 0.5)
    runs = [[0.1, 0.4, 0.35, 0.8], [0.5, 0.9, 0.7], [0.2, 0.25]]
    a = iqm_ci(runs, n_resamples=2000, seed=3)
    assert a.value == pytest.approx(iqm(np.concatenate([np.asarray(r) for r in runs])))
    assert a.low < a.value < a.high
    assert iqm_ci(runs, n_resamples=2000, seed=3) == a
    p = iqm_ci(runs, n_resamples=2000, seed=3, method="percentile")
    assert p.value == a.value and p.low < p.value < p.high
    # an env with a single run: its spread is unknown, so is the interval
    one = iqm_ci([*runs[:2], [0.2]], n_resamples=2000)
    assert one.value == pytest.approx(iqm([0.1, 0.4, 0.35, 0.8, 0.5, 0.9, 0.7, 0.2]))
    assert math.isnan(one.low) and math.isnan(one.high)


def test_normalise_per_env_min_max():
    scores = {"a": np.array([0.0, 5.0, 10.0]), "b": np.array([-1.0, 1.0])}
    own = normalise_per_env(scores)
    assert own["a"].tolist() == [0.0, 0.5, 1.0] and own["b"].tolist() == [0.0, 1.0]
    stated = normalise_per_env(scores, {"a": (0.0, 20.0), "b": (-3.0, 1.0)})
    assert stated["a"].tolist() == [0.0, 0.25, 0.5] and stated["b"].tolist() == [0.5, 1.0]
    other = {"a": np.array([20.0, np.nan])}
    assert reference_range(scores, other) == {"a": (0.0, 20.0), "b": (-1.0, 1.0)}
    with pytest.raises(ValueError, match="b: reference high 2.0 must exceed low 2.0"):
        normalise_per_env(scores, {"a": (0.0, 1.0), "b": (2.0, 2.0)})
    with pytest.raises(ValueError, match="b: no reference scores"):
        normalise_per_env(scores, {"a": (0.0, 1.0)})


def _by_pairs(x, y):
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y))
    return wins / (len(x) * len(y))


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1.0, 2.0, 3.0], [0.0, 2.0]),
        ([1.0, 1.0, 1.0], [1.0, 1.0]),
        ([0.3, 0.1, 0.7, 0.7, 0.2], [0.7, 0.2, 0.5]),
        ([5.0], [1.0, 9.0, 5.0, 2.0]),
    ],
)
def test_improvement_probability_equals_the_count_over_pairs(x, y):
    p = float(improvement_probability(x, y))
    assert p == pytest.approx(_by_pairs(x, y))
    assert p == pytest.approx(st.mannwhitneyu(x, y).statistic / (len(x) * len(y)))
    assert float(improvement_probability(y, x)) == pytest.approx(1 - p)


def test_probability_of_improvement_averages_envs_with_stratified_interval():
    x = [[1.0, 2.0, 3.0], [0.3, 0.1, 0.7, 0.7, 0.2], [np.nan, 4.0]]
    y = [[0.0, 2.0], [0.7, 0.2, 0.5], [np.nan]]  # the last env: no run of y, left out
    r = probability_of_improvement(x, y, n_resamples=2000, seed=0)
    per_env = (_by_pairs(x[0], y[0]), _by_pairs(x[1], y[1]))
    assert r.per_env == pytest.approx(per_env)
    assert r.value == pytest.approx(sum(per_env) / 2)
    assert 0.0 <= r.low < r.value < r.high <= 1.0
    assert probability_of_improvement(x, y, n_resamples=2000, seed=0) == r
    # X always wins in one env and always loses in the other: every stratified resample says 0.5
    split = probability_of_improvement([[5, 6, 7], [0, 1]], [[1, 2], [3, 4, 5]], n_resamples=1000)
    assert split[:3] == (0.5, 0.5, 0.5) and split.per_env == (1.0, 0.0)
    single = probability_of_improvement([[5.0, 6.0]], [[1.0]], n_resamples=1000)
    assert single.value == 1.0 and math.isnan(single.low) and math.isnan(single.high)
    # certain everywhere: BCa is undefined, the interval is the point
    sure = probability_of_improvement([[5.0, 6.0, 7.0]], [[1.0, 2.0]], n_resamples=1000)
    assert sure[:3] == (1.0, 1.0, 1.0)


def test_t_interval_per_update_counts_only_seeds_with_a_value():
    curve = np.array(
        [[1.0, 2.0, np.nan], [2.0, np.nan, np.nan], [4.0, 6.0, np.nan]]
    )  # (seed, update)
    mean, low, high = t_interval(curve, axis=0)
    assert mean[:2] == pytest.approx([7 / 3, 4.0]) and math.isnan(mean[2])
    first = mean_ci(curve[:, 0])
    assert (low[0], high[0]) == pytest.approx((first.low, first.high))
    half = 12.706204736174705 * np.std([2.0, 6.0], ddof=1) / math.sqrt(2)  # t(0.975, 1)
    assert (low[1], high[1]) == pytest.approx((4.0 - half, 4.0 + half))
    assert math.isnan(low[2]) and math.isnan(high[2])
    one = t_interval(np.array([[3.0], [np.nan]]), axis=0)
    assert one[0][0] == 3.0 and math.isnan(one[1][0]) and math.isnan(one[2][0])
