"""bootstrap_best's shortcuts change no number: a direct computation of every resample agrees."""

from __future__ import annotations

import numpy as np
import pytest

from sweepax.results.stats import bootstrap_best, mean_ci


def _direct_win_shares(scores: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Every config summed in every resample, each config's seeds drawn with its own bound."""
    configs, seeds = scores.shape
    ok = np.isfinite(scores)
    n = ok.sum(axis=1)
    order = np.argsort(~ok, axis=1, kind="stable")
    packed = np.take_along_axis(np.where(ok, scores, 0.0), order, axis=1)
    used = np.arange(seeds)[None, None, :] < n[None, :, None]
    rows = np.arange(configs)[None, :, None]
    rng = np.random.default_rng(seed)
    wins = np.zeros(configs)
    chunk = max(1, (1 << 22) // (configs * seeds))
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        idx = rng.integers(0, np.maximum(n, 1)[None, :, None], size=(r, configs, seeds))
        total = np.where(used, packed[rows, idx], 0.0).sum(axis=2)
        means = np.where(n > 0, total / np.maximum(n, 1), -np.inf)
        top = means == means.max(axis=1, keepdims=True)
        wins += (top / top.sum(axis=1, keepdims=True)).sum(axis=0)
    return wins / n_resamples


@pytest.mark.parametrize("case", range(12))
def test_bootstrap_best_equals_the_direct_computation(case):
    rng = np.random.default_rng(case)
    configs, seeds = int(rng.integers(2, 40)), int(rng.integers(1, 6))
    scores = np.round(rng.normal(size=(configs, seeds)), int(rng.integers(0, 3)))  # with ties
    if case % 3 == 0:
        scores[rng.random(scores.shape) < 0.3] = np.nan  # configs with fewer seeds, or none
    scores[0] = scores[0] + 2 if case % 4 == 1 else scores[0]  # a clear winner: most pruned
    if not np.isfinite(scores).any():
        scores[0, 0] = 1.0
    got = bootstrap_best(scores, 1000, case)
    np.testing.assert_array_equal(got.probability, _direct_win_shares(scores, 1000, case))
    cis = [mean_ci(row) for row in scores]
    np.testing.assert_array_equal(got.low, [ci.low for ci in cis])
    np.testing.assert_array_equal(got.high, [ci.high for ci in cis])
