"""How the score depends on each swept hyperparameter: per env and hyperparameter, at each of its
values, the best config over the other hyperparameters, with the 95% Student-t interval of its
mean over seeds (Patterson et al., JMLR 2024, sensitivity curves).
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sweepax import files
from sweepax.results.parse import ENV
from sweepax.results.stats import CONFIDENCE, t_interval
from sweepax.results.store import read_attrs
from sweepax.results.values import nanmean


class Line(tp.NamedTuple):
    """One panel: the hyperparameter's values and, at each, the best score over the others."""

    values: list[tp.Any]
    mean: np.ndarray  # (value,) NaN where no config with that value has data
    low: np.ndarray  # (value,) NaN where the interval is undefined (one seed)
    high: np.ndarray


def best_over_others(cells: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each index along ``axis`` of ``cells`` (hyperparameters..., seed), the config with
    the highest mean over its seeds among the others (the first on ties): its mean and interval."""
    seeds = cells.shape[-1]
    grouped = np.moveaxis(cells, axis, 0)
    grouped = grouped.reshape(grouped.shape[0], -1, seeds)  # (value, other configs, seed)
    means = nanmean(grouped, axis=-1)
    out = np.full((3, grouped.shape[0]), np.nan)
    for k, (row_means, rows) in enumerate(zip(means, grouped, strict=True)):
        if np.isfinite(row_means).any():
            j = int(np.argmax(np.where(np.isfinite(row_means), row_means, -np.inf)))
            out[:, k] = [float(v) for v in t_interval(rows[j], axis=0, confidence=CONFIDENCE)]
    return out[0], out[1], out[2]


def sensitivity(per_seed: xr.DataArray, scores: xr.Dataset) -> dict[str, dict[str, Line]]:
    """``{env: {hyperparameter: Line}}`` from per-seed scores (env, hyperparameters..., seed)
    (``best.per_seed_scores``), for every hyperparameter the study sweeps."""
    varying = [d for d in read_attrs(scores.attrs).get("hparams", []) if d in scores.dims]
    cells = per_seed.transpose(ENV, *varying, "seed").values
    out: dict[str, dict[str, Line]] = {}
    for e, env in enumerate(scores[ENV].values.tolist()):
        out[str(env)] = {
            h: Line(scores[h].values.tolist(), *best_over_others(cells[e], i))
            for i, h in enumerate(varying)
        }
    return out


def _positions(values: list[tp.Any]) -> tuple[np.ndarray, bool, bool]:
    """``(x, numeric, log)``: numbers on a log axis when positive and spanning 10x or more,
    anything else at 0, 1, 2, ... with its values as tick labels."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numeric:
        return np.arange(len(values), dtype=np.float64), False, False
    x = np.asarray(values, dtype=np.float64)
    log = bool(np.all(x > 0) and x.max() >= 10 * x.min())
    return x, True, log


def sensitivity_figure(
    lines: tp.Mapping[str, tp.Mapping[str, Line]], title: str, ylabel: str
) -> Figure:
    """One row of panels per env, one panel per swept hyperparameter: the best score at each
    of its values with its 95% interval as a band (and error bars where the band has one point)."""
    envs = list(lines)
    names = list(next(iter(lines.values()), {}))
    rows, cols = max(len(envs), 1), max(len(names), 1)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, env in enumerate(envs):
        for c, name in enumerate(names):
            ax, line = axes[r][c], lines[env][name]
            x, numeric, log = _positions(line.values)
            (drawn,) = ax.plot(x, line.mean, marker="o", linewidth=1.5)
            color = drawn.get_color()
            ax.fill_between(x, line.low, line.high, color=color, alpha=0.25, linewidth=0)
            err = np.abs(np.stack([line.mean - line.low, line.high - line.mean]))
            ax.errorbar(x, line.mean, yerr=np.nan_to_num(err), fmt="none", color=color, capsize=3)
            if log:
                ax.set_xscale("log")
            if not numeric:
                ax.set_xticks(x, [str(v) for v in line.values])
            ax.set_title(f"{env}: {name}")
            ax.set_xlabel(name)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def write_sensitivity(
    lines: tp.Mapping[str, tp.Mapping[str, Line]], path: Path, title: str, ylabel: str
) -> Path | None:
    """Save the figure as PNG, atomically; None (nothing written) when nothing is swept."""
    if not lines or not any(lines.values()):
        return None
    fig = sensitivity_figure(lines, title, ylabel)
    with files.building(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
        return files.publish(tmp, Path(path), replace=True)
