"""Learning-curve figures (mean ± sem over seeds vs environment steps), rendered to PNG with Agg.

Uses ``matplotlib.figure.Figure`` directly (no pyplot, no global backend switch), see
https://matplotlib.org/stable/gallery/user_interfaces/web_application_server_sgskip.html.
"""

from __future__ import annotations

import math
import typing as tp
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from sweepax import files


class Curve(tp.NamedTuple):
    """One line: ``mean`` ± ``sem`` (update,) against ``x`` (update,) environment steps."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    sem: np.ndarray


def seed_mean_sem(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0 (seed) ignoring NaN; (update,) each, no warnings.

    The sem is the sample standard deviation (ddof=1) over sqrt(n); 0 where only one seed has a
    value, NaN where none has.
    """
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    filled = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / np.maximum(n, 1), np.nan)
        sq = np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(n > 1, np.sqrt(sq / np.maximum(n - 1, 1)), 0.0)
        sem = np.where(n > 0, std / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, sem


def plot_curves(
    panels: tp.Mapping[str, tp.Sequence[Curve]],
    path: Path,
    title: str = "",
    ylabel: str = "episode_return",
) -> Path:
    """Save one axes per panel (env), each with its curves and a shaded ± sem band, to ``path``.

    Parameters
    ----------
    panels
        Panel title (env) -> curves drawn on it; panels appear in the given order.
    path
        The PNG to write, atomically (parent folders are created).
    title
        Figure title.
    ylabel
        Label of every y axis (the metric plotted).
    """
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.5 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, curves) in zip(axes, panels.items(), strict=False):
        for curve in curves:
            x = np.asarray(curve.x, dtype=np.float64)
            mean = np.asarray(curve.mean, dtype=np.float64)
            sem = np.asarray(curve.sem, dtype=np.float64)
            (line,) = ax.plot(x, mean, label=curve.label, linewidth=1.5)
            ax.fill_between(
                x, mean - sem, mean + sem, color=line.get_color(), alpha=0.25, linewidth=0
            )
        ax.set_title(str(name))
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.building(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
        return files.publish(tmp, path, replace=True)
