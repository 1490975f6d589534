"""Statistics for choosing and reporting configurations: which config is best and how sure we are,
confidence intervals of means over seeds, and aggregates across envs.

Follows Patterson, Neumann, White & White, "Empirical Design in Reinforcement Learning" (JMLR
2024; the probability of being best and the uncertainty set) and Agarwal et al., "Deep RL at the
Edge of the Statistical Precipice" (NeurIPS 2021, https://github.com/google-research/rliable: the
interquartile mean, the probability of improvement and stratified-bootstrap intervals).

Every random number comes from ``np.random.default_rng(seed)``: the same inputs and seed give the
same numbers.
"""

from __future__ import annotations

import typing as tp
import warnings

import numpy as np
import scipy.stats as st

from sweepax.results.values import nanmean

CONFIDENCE = 0.95
N_RESAMPLES = 10_000
MIN_RESAMPLES = 1000
UNCERTAINTY_THRESHOLD = 0.05
MEAN_CI_METHODS = ("t", "BCa", "percentile")
BOOTSTRAP_METHODS = ("BCa", "percentile")
_CHUNK = 1 << 22  # resampled values held at once by ``bootstrap_best``


class Interval(tp.NamedTuple):
    """A point estimate and its confidence interval; low and high are NaN where undefined."""

    value: float
    low: float
    high: float


class BestUncertainty(tp.NamedTuple):
    """Which config of a (config, seed) score table is best, and how sure the seeds make us.

    ``best``: the config with the highest mean over its seeds (the first on ties; None when no
    config has data). ``probability[c]``: the share of bootstrap resamples in which config ``c``
    has the highest mean (a tie shares the resample equally). ``uncertainty_set``: the configs
    with ``probability >= threshold``, most probable first. ``mean``, ``low``, ``high``,
    ``n_seeds``: each config's mean over its seeds and the ``confidence`` interval of that mean
    (``ci_method``).
    """

    best: int | None
    probability: np.ndarray
    uncertainty_set: tuple[int, ...]
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: np.ndarray
    n_resamples: int
    seed: int
    threshold: float
    confidence: float
    ci_method: str


def _finite(x: tp.Any) -> np.ndarray:
    """The finite values of ``x``, flattened, as float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def _check(n_resamples: int, confidence: float, method: str, methods: tp.Sequence[str]) -> None:
    if n_resamples < MIN_RESAMPLES:
        raise ValueError(f"n_resamples must be at least {MIN_RESAMPLES}, not {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if method not in methods:
        raise ValueError(f"method must be one of {methods}, not {method!r}")


def bootstrap_interval(
    samples: tp.Sequence[np.ndarray],
    statistic: tp.Callable[..., np.ndarray],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: str = "BCa",
) -> tuple[float, float]:
    """Stratified-bootstrap interval of ``statistic(*samples)``: each sample (stratum) is
    resampled with replacement on its own, keeping its size (``scipy.stats.bootstrap`` with
    ``paired=False``).

    ``statistic(*samples, axis)`` must reduce the last axis and accept leading batch dims. The
    interval is NaN when a sample has fewer than two values: resampling one run says nothing
    about its spread, so the interval would be too narrow, down to zero width. Where every
    resample gives the same value the interval is that value. BCa is undefined where every
    jackknife value is equal (e.g. a probability of improvement of exactly 1 in every env): there
    the percentile interval of the same resamples is returned.
    """
    _check(n_resamples, confidence, method, BOOTSTRAP_METHODS)
    samples = [np.asarray(s, dtype=np.float64) for s in samples]
    if any(s.size < 2 for s in samples):
        return np.nan, np.nan

    def batched(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        batch = np.broadcast_shapes(*(s.shape[:-1] for s in drawn))
        return statistic(*(np.broadcast_to(s, batch + s.shape[-1:]) for s in drawn), axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", st.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # BCa's 0/0 where it is undefined
        res = st.bootstrap(
            samples,
            batched,
            n_resamples=n_resamples,
            vectorized=True,
            paired=False,
            axis=-1,
            confidence_level=confidence,
            method=method,
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    if np.all(dist == dist.flat[0]):
        return float(dist.flat[0]), float(dist.flat[0])
    low, high = (float(v) for v in res.confidence_interval)
    if not (np.isfinite(low) and np.isfinite(high)):
        alpha = 1 - confidence
        low, high = (float(v) for v in np.quantile(dist, [alpha / 2, 1 - alpha / 2]))
    return low, high


def _mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(samples[0], axis=axis)


def t_interval(
    values: tp.Any, axis: int = 0, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over ``axis`` of the finite values and Student's t interval of it,
    mean ± t(1 - alpha/2, n - 1) * std / sqrt(n) with n the finite values at each position (e.g.
    a learning curve's seeds at each update). NaN where n is 0; low and high NaN where n is 1."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=axis) / n
        dev = np.where(ok, x - np.expand_dims(mean, axis), 0.0)
        std = np.sqrt((dev**2).sum(axis=axis) / (n - 1))
        half = st.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)
    mean = np.where(n > 0, mean, np.nan)
    half = np.where(n > 1, half, np.nan)
    return mean, mean - half, mean + half


def mean_ci(
    values: tp.Any,
    confidence: float = CONFIDENCE,
    method: str = "t",
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean of the finite ``values`` (one config's seeds) and its ``confidence`` interval.

    ``t``: Student's t, mean ± t(1 - alpha/2, n - 1) * std / sqrt(n). ``BCa`` / ``percentile``:
    ``scipy.stats.bootstrap`` over the values. With 3 to 5 seeds both bootstrap intervals are far
    too narrow (nominal 95% intervals of a normal mean cover it about 76% of the time with 3
    seeds, 85% with 5), while t covers 95%; hence t is the default. Low and high are NaN with
    fewer than two values; equal values give a zero-width interval.
    """
    _check(n_resamples, confidence, method, MEAN_CI_METHODS)
    x = _finite(values)
    if x.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    mean = float(np.mean(x))
    if x.size == 1:
        return Interval(mean, np.nan, np.nan)
    if np.all(x == x[0]):
        return Interval(mean, mean, mean)
    if method == "t":
        _, low, high = t_interval(x, axis=0, confidence=confidence)
        return Interval(mean, float(low), float(high))
    low, high = bootstrap_interval([x], _mean, confidence, n_resamples, seed, method)
    return Interval(mean, low, high)


def _win_shares(scores: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Over ``n_resamples`` joint resamples (each config's finite seeds drawn with replacement,
    independently of the other configs), how many resamples each config wins; ties share.

    Every seed index is drawn as always (the same numbers for the same ``rng``), but only the
    configs that can win are summed: one whose highest seed is below some config's lowest seed
    never has the highest resampled mean (with a margin far above rounding)."""
    configs, seeds = scores.shape
    ok = np.isfinite(scores)
    n = ok.sum(axis=1)
    order = np.argsort(~ok, axis=1, kind="stable")  # finite values first, in seed order
    packed = np.take_along_axis(np.where(ok, scores, 0.0), order, axis=1)
    low = np.where(ok, scores, np.inf).min(axis=1)
    high = np.where(ok, scores, -np.inf).max(axis=1)
    bar = low[n > 0].max()
    live = np.flatnonzero((n > 0) & (high >= bar - 1e-9 * (abs(bar) + 1)))
    used = np.arange(seeds)[None, None, :] < n[None, live, None]  # the n_c draws of config c
    rows = np.arange(live.size)[None, :, None]
    # one bound for every config draws the same numbers as a bound per config, faster
    bound = int(max(n[0], 1)) if (n == n[0]).all() else np.maximum(n, 1)[None, :, None]
    wins = np.zeros(configs)
    chunk = max(1, _CHUNK // max(configs * seeds, 1))
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        idx = rng.integers(0, bound, size=(r, configs, seeds))[:, live, :]
        total = np.where(used, packed[live][rows, idx], 0.0).sum(axis=2)
        means = total / n[live]
        top = means == means.max(axis=1, keepdims=True)
        shares = np.zeros((r, configs))  # summed at full width: the same rounding as before
        shares[:, live] = top / top.sum(axis=1, keepdims=True)
        wins += shares.sum(axis=0)
    return wins


def bootstrap_best(
    per_seed: tp.Any,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    threshold: float = UNCERTAINTY_THRESHOLD,
    confidence: float = CONFIDENCE,
    ci_method: str = "t",
) -> BestUncertainty:
    """How likely each config is to be the best one, from a (config, seed) table of scores.

    Parameters
    ----------
    per_seed
        Scores, shape (config, seed); NaN where a cell has no data. A config without any score
        never wins.
    n_resamples
        Bootstrap resamples (at least 1000). In each, every config's finite seeds are drawn with
        replacement, independently per config (stratified by config), and the config with the
        highest resampled mean wins; ``probability`` is each config's share of the wins.
    seed
        Seed of ``np.random.default_rng`` (and of the bootstrap intervals, if any).
    threshold
        A config winning at least this share of resamples is in the uncertainty set. The set
        is not a confidence set for the truly best config: resamples vary around the observed
        ranking, so with few seeds the probabilities are too sure (simulated, 5 configs, the
        best 0.5 standard deviations above 4 equal ones: it falls outside the set in 16% of
        trials with 3 seeds, 4% with 10).
    confidence, ci_method
        Level and method of each config's interval of its mean, see ``mean_ci``.
    """
    scores = np.asarray(per_seed, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"per_seed must have dims (config, seed), not shape {scores.shape}")
    _check(n_resamples, confidence, ci_method, MEAN_CI_METHODS)
    n = np.isfinite(scores).sum(axis=1)
    mean = nanmean(scores, axis=1)
    probability = np.zeros(scores.shape[0])
    best = None
    if np.any(n > 0):
        probability = _win_shares(scores, n_resamples, np.random.default_rng(seed)) / n_resamples
        best = int(np.argmax(np.where(n > 0, mean, -np.inf)))
    chosen = [int(c) for c in np.flatnonzero(probability >= threshold)]
    if ci_method == "t":  # mean_ci of every row at once (the same numbers)
        _, low, high = t_interval(scores, axis=1, confidence=confidence)
    else:
        cis = [mean_ci(row, confidence, ci_method, n_resamples, seed) for row in scores]
        low, high = np.array([ci.low for ci in cis]), np.array([ci.high for ci in cis])
    return BestUncertainty(
        best=best,
        probability=probability,
        uncertainty_set=tuple(sorted(chosen, key=lambda c: (-probability[c], c))),
        mean=mean,
        low=np.asarray(low, np.float64).reshape(-1),
        high=np.asarray(high, np.float64).reshape(-1),
        n_seeds=n,
        n_resamples=int(n_resamples),
        seed=int(seed),
        threshold=float(threshold),
        confidence=float(confidence),
        ci_method=ci_method,
    )


def iqm(x: tp.Any) -> float:
    """Interquartile mean of every finite value of ``x`` (runs, and tasks if any, pooled): the
    mean of the middle half, ``scipy.stats.trim_mean(x, 0.25)``; NaN when nothing is finite."""
    values = _finite(x)
    return float(st.trim_mean(values, 0.25)) if values.size else float("nan")


def _pooled_iqm(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return st.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)


def iqm_ci(
    runs_per_env: tp.Sequence[tp.Any],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: str = "BCa",
) -> Interval:
    """IQM of the runs of every env pooled, with a stratified-bootstrap interval: each env's runs
    are resampled within that env (see ``bootstrap_interval``). NaN runs are dropped; an env
    without runs is left out."""
    strata = [s for s in (_finite(r) for r in runs_per_env) if s.size]
    if not strata:
        return Interval(np.nan, np.nan, np.nan)
    value = float(_pooled_iqm(*strata))
    low, high = bootstrap_interval(strata, _pooled_iqm, confidence, n_resamples, seed, method)
    return Interval(value, low, high)


def reference_range(*studies: tp.Mapping[str, tp.Any]) -> dict[str, tuple[float, float]]:
    """Per env, the lowest and highest finite score of any of the given ``{env: scores}`` maps."""
    envs = sorted({e for s in studies for e in s})
    out = {}
    for env in envs:
        values = np.concatenate([_finite(s[env]) for s in studies if env in s])
        if values.size:
            out[env] = (float(values.min()), float(values.max()))
    return out


def normalise_per_env(
    scores: tp.Mapping[str, tp.Any],
    reference: tp.Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Min-max normalise each env's scores: ``(x - low) / (high - low)``.

    ``reference[env] = (low, high)``: stated reference scores (e.g. a random policy's and the
    optimal return) or the range of several studies (``reference_range``). Without it, each
    env's own lowest and highest finite score. ``high`` must exceed ``low``.
    """
    reference = reference_range(scores) if reference is None else reference
    out = {}
    for env, x in scores.items():
        if env not in reference:
            raise ValueError(f"{env}: no reference scores (low, high) to normalise it with")
        low, high = reference[env]
        if not high > low:
            raise ValueError(f"{env}: reference high {high} must exceed low {low}")
        out[env] = (np.asarray(x, dtype=np.float64) - low) / (high - low)
    return out


def improvement_probability(x: tp.Any, y: tp.Any, axis: int = -1) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 for a run X of ``x`` and a run Y of ``y`` drawn at random: the
    Mann-Whitney U of ``x`` divided by ``n_x * n_y`` (ranks of the pooled runs, ties averaged)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    nx, ny = x.shape[-1], y.shape[-1]
    batch = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    both = np.concatenate(
        [np.broadcast_to(x, batch + (nx,)), np.broadcast_to(y, batch + (ny,))], axis=-1
    )
    ranks = st.rankdata(both, axis=-1)
    u = ranks[..., :nx].sum(axis=-1) - nx * (nx + 1) / 2
    return u / (nx * ny)


def _mean_improvement(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    pairs = [
        improvement_probability(samples[i], samples[i + 1], axis=axis)
        for i in range(0, len(samples), 2)
    ]
    return np.mean(pairs, axis=0)


class Improvement(tp.NamedTuple):
    """Probability that X beats Y, averaged over envs, with its interval, and per env."""

    value: float
    low: float
    high: float
    per_env: tuple[float, ...]


def probability_of_improvement(
    x_per_env: tp.Sequence[tp.Any],
    y_per_env: tp.Sequence[tp.Any],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: str = "BCa",
) -> Improvement:
    """Probability that a run of X beats a run of Y (``improvement_probability`` per env, then
    the mean over envs), with a stratified-bootstrap interval: X's and Y's runs are resampled
    separately within each env. ``x_per_env[i]`` and ``y_per_env[i]`` are the runs of one env;
    NaN runs are dropped and an env where either has no run is left out."""
    if len(x_per_env) != len(y_per_env):
        raise ValueError(f"{len(x_per_env)} envs of x but {len(y_per_env)} of y")
    strata: list[np.ndarray] = []
    for x, y in zip(x_per_env, y_per_env, strict=True):
        fx, fy = _finite(x), _finite(y)
        if fx.size and fy.size:
            strata += [fx, fy]
    if not strata:
        return Improvement(np.nan, np.nan, np.nan, ())
    per_env = tuple(
        float(improvement_probability(strata[i], strata[i + 1])) for i in range(0, len(strata), 2)
    )
    low, high = bootstrap_interval(strata, _mean_improvement, confidence, n_resamples, seed, method)
    return Improvement(float(np.mean(per_env)), low, high, per_env)
