"""Compare studies env by env and across envs: learning curves with 95% intervals, a table of
scores with the probability that each study beats each other one, and the IQM of per-env
normalised scores.

Usage: ``python -m sweepax.results.compare STUDY_DIR STUDY_DIR ... [--measure final|auc]
[--discounted] [--out DIR]``. Writes ``DIR/compare_<measure>[_discounted].md`` (also printed),
``..._curves.png/.svg`` (one panel per env) and ``..._aggregate.png/.svg``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, MaxNLocator
from rich.console import Console

from sweepax import files
from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.results.best import (
    MEASURES,
    best,
    current_scores,
    describe_gaps,
    metric_names,
    per_seed_scores,
    refusal,
    study_gaps,
)
from sweepax.results.parse import ENV, SCORES, add_study_arguments, study_dirs
from sweepax.results.stats import (
    CONFIDENCE,
    MIN_RESAMPLES,
    N_RESAMPLES,
    BestUncertainty,
    Improvement,
    Interval,
    bootstrap_best,
    iqm_ci,
    mean_ci,
    normalise_per_env,
    probability_of_improvement,
    reference_range,
    t_interval,
)
from sweepax.results.store import all_complete_stores

FORMATS = ("png", "svg")


class Selected(tp.NamedTuple):
    """The config a study is shown at in one env, with its scores and learning curve."""

    hparams: dict[str, tp.Any]  # values of the study's swept hyperparameters
    n_configs: int  # configs with a score in this env; 1 for a confirmation study
    choice: BestUncertainty | None  # how sure the seeds make the choice; None for one config
    per_seed: np.ndarray  # (seed,) finite scores by the measure
    curve: np.ndarray  # (seed, update) return per update
    env_steps: np.ndarray  # (update,)


class Settings(tp.NamedTuple):
    """What the numbers are of and how their intervals are made."""

    measure: str = "final"
    discounted: bool = False
    n_resamples: int = N_RESAMPLES
    seed: int = 0
    confidence: float = CONFIDENCE


def stem(settings: Settings) -> str:
    """``compare_<measure>[_discounted]``."""
    return f"compare_{settings.measure}" + ("_discounted" if settings.discounted else "")


def select(scores: xr.Dataset, settings: Settings) -> dict[str, Selected]:
    """Per env, the config ``best`` picks by the measure (the only one in a confirmation study)."""
    result = best(scores, settings.measure, settings.discounted)
    varying = list(result["hparams"])
    seed_scores = per_seed_scores(scores, settings.measure, settings.discounted)
    metric = metric_names("auc", settings.discounted)
    out = {}
    for env, r in result["envs"].items():
        if r["score"] is None:
            continue
        where = {ENV: env, **{d: r["hparams"][d] for d in varying}}
        cells = seed_scores.sel({ENV: env}).transpose(..., "seed").values
        cells = cells.reshape(-1, cells.shape[-1])  # (config, seed) in sorted coordinate order
        n_configs = int(np.isfinite(cells).any(axis=1).sum())
        steps = scores["env_steps"]
        steps = steps.sel({k: v for k, v in where.items() if k in steps.dims})
        out[env] = Selected(
            hparams={d: r["hparams"][d] for d in varying},
            n_configs=n_configs,
            choice=None
            if n_configs < 2
            else bootstrap_best(cells, settings.n_resamples, settings.seed),
            per_seed=np.asarray(r["per_seed"], dtype=np.float64),
            curve=scores[metric].sel(where).transpose("seed", "update").values,
            env_steps=np.asarray(steps.values, dtype=np.float64),
        )
    return out


def pairwise(
    runs: tp.Mapping[str, tp.Sequence[np.ndarray]], settings: Settings
) -> dict[tuple[str, str], Improvement]:
    """``(a, b)`` -> probability that a run of ``a`` beats a run of ``b``, env by env (the same
    envs in the same order for every study), averaged over envs, with its interval."""
    names = list(runs)
    return {
        (a, b): probability_of_improvement(
            runs[a], runs[b], settings.confidence, settings.n_resamples, settings.seed
        )
        for a in names
        for b in names
        if a != b
    }


class EnvRow(tp.NamedTuple):
    study: str
    selected: Selected
    score: Interval


class EnvTable(tp.NamedTuple):
    rows: list[EnvRow]  # the studies with data in the env
    beats: dict[tuple[str, str], Improvement]


def env_table(
    env: str, chosen: tp.Mapping[str, dict[str, Selected]], settings: Settings
) -> EnvTable:
    """The studies with data in ``env``: score with its interval over seeds, and each pair's
    probability of improvement."""
    rows = [
        EnvRow(s, by_env[env], mean_ci(by_env[env].per_seed, settings.confidence))
        for s, by_env in chosen.items()
        if env in by_env
    ]
    beats = pairwise({r.study: [r.selected.per_seed] for r in rows}, settings)
    return EnvTable(rows, beats)


class AggregateRow(tp.NamedTuple):
    study: str
    runs: int
    iqm: Interval


class Aggregate(tp.NamedTuple):
    envs: list[str]  # the envs aggregated over
    rows: list[AggregateRow]  # one per study
    beats: dict[tuple[str, str], Improvement]
    left_out: list[str]  # envs not aggregated over, each with why


def aggregate(
    chosen: tp.Mapping[str, dict[str, Selected]],
    reference: tp.Mapping[str, tuple[float, float]] | None,
    settings: Settings,
) -> Aggregate:
    """Across the envs every study has data in: the IQM of min-max normalised scores with a
    stratified-bootstrap interval, and each pair's probability of improvement (mean over envs).

    ``reference[env] = (low, high)``; by default each env's lowest and highest run of any study
    (an env where every run scores the same is then left out).
    """
    shared = sorted(set.intersection(*(set(by_env) for by_env in chosen.values())))
    runs = {s: {e: by_env[e].per_seed for e in shared} for s, by_env in chosen.items()}
    reference = dict(reference or reference_range(*runs.values()))
    left_out = [
        f"{e} (only in {', '.join(s for s, by_env in chosen.items() if e in by_env)})"
        for e in sorted({e for by_env in chosen.values() for e in by_env} - set(shared))
    ]
    flat = [e for e in shared if not reference[e][1] > reference[e][0]]
    left_out += [f"{e} (every run scores {reference[e][0]:.4g})" for e in flat]
    envs = [e for e in shared if e not in flat]
    normalised = {s: normalise_per_env({e: r[e] for e in envs}, reference) for s, r in runs.items()}
    rows = [
        AggregateRow(
            s,
            sum(int(np.isfinite(x).sum()) for x in n.values()),
            iqm_ci(
                list(n.values()),
                settings.confidence,
                settings.n_resamples,
                settings.seed,
            ),
        )
        for s, n in normalised.items()
    ]
    beats = pairwise({s: [n[e] for e in envs] for s, n in normalised.items()}, settings)
    return Aggregate(envs, rows, beats, left_out)


def _num(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.4g}"


def _interval(low: float, high: float) -> str:
    return (
        "–" if not (math.isfinite(low) and math.isfinite(high)) else f"[{_num(low)}, {_num(high)}]"
    )


def _beats_cells(study: str, others: list[str], beats: dict[tuple[str, str], Improvement]) -> list:
    cells = []
    for other in others:
        p = beats.get((study, other))
        cells.append("–" if p is None else f"{_num(p.value)} {_interval(p.low, p.high)}")
    return cells


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _config_text(sel: Selected) -> str:
    values = ", ".join(f"{k}={v}" for k, v in sel.hparams.items()) or "(no swept values)"
    return values + (f" (best of {sel.n_configs})" if sel.n_configs > 1 else "")


def _choice_text(choice: BestUncertainty | None) -> str:
    if choice is None or choice.best is None:
        return "–"
    return f"{_num(choice.probability[choice.best])}; {len(choice.uncertainty_set)}"


def _preamble(studies: tp.Mapping[str, Path], settings: Settings) -> list[str]:
    what = metric_names(settings.measure, settings.discounted)
    boot = f"stratified bootstrap (BCa, {settings.n_resamples} resamples, seed {settings.seed})"
    return [
        f"# Comparison by {settings.measure} ({what})",
        "",
        "Studies: " + ", ".join(f"`{s}` ({p})" for s, p in studies.items()) + ".",
        "",
        "Each study is shown in each env at one config: the only one it ran (a confirmation "
        f"study), or the best of several by {settings.measure}, marked `*`; a config chosen "
        "on the same seeds it is scored on is biased upward: rerun it on fresh seeds for an "
        "unbiased score. P(best): the share of bootstrap resamples of each config's seeds "
        f"({settings.n_resamples}, seed {settings.seed}) in which the shown config has the "
        "highest mean; set: how many configs win at least 5% of them. "
        f"Intervals are {settings.confidence:.0%}: a score's over its seeds by Student's t; "
        "P(> column), the probability that a run of the row's study beats one of the "
        f"column's (ties count 1/2), and the IQM by {boot}; – where an interval is undefined "
        "(a study with a single seed in an env).",
    ]


def _env_section(env: str, table: EnvTable, settings: Settings) -> list[str]:
    others = [r.study for r in table.rows]
    body = [
        [
            r.study + ("*" if r.selected.n_configs > 1 else ""),
            _config_text(r.selected),
            _choice_text(r.selected.choice),
            str(r.selected.per_seed.size),
            _num(r.score.value),
            _interval(r.score.low, r.score.high),
            *_beats_cells(r.study, others, table.beats),
        ]
        for r in table.rows
    ]
    what = metric_names(settings.measure, settings.discounted)
    header = ["study", "config", "P(best); set", "seeds", what, f"{settings.confidence:.0%} CI"]
    return ["", f"## {env}", "", *_table(header + [f"P(> {o})" for o in others], body)]


def _aggregate_section(
    agg: Aggregate, names: list[str], reference_note: str, settings: Settings
) -> list[str]:
    lines = ["", "## Across envs", ""]
    left_out = f"Left out: {'; '.join(agg.left_out)}." if agg.left_out else ""
    if not agg.envs:
        return lines + [f"No env has data from every study. {left_out}".rstrip()]
    what = metric_names(settings.measure, settings.discounted)
    lines.append(
        f"IQM of {what} normalised per env to [0, 1] ({reference_note}) over the runs of "
        f"{len(agg.envs)} env(s): {', '.join(agg.envs)}. {left_out}".rstrip()
    )
    body = [
        [
            r.study,
            str(len(agg.envs)),
            str(r.runs),
            _num(r.iqm.value),
            _interval(r.iqm.low, r.iqm.high),
            *_beats_cells(r.study, names, agg.beats),
        ]
        for r in agg.rows
    ]
    header = ["study", "envs", "runs", "IQM", f"{settings.confidence:.0%} CI"]
    return lines + ["", *_table(header + [f"P(> {o})" for o in names], body)]


def markdown(
    studies: tp.Mapping[str, Path],
    per_env: tp.Mapping[str, EnvTable],
    agg: Aggregate,
    reference_note: str,
    settings: Settings,
) -> str:
    """The comparison as Markdown: what the numbers are, a table per env, then the aggregate."""
    lines = _preamble(studies, settings)
    for env, table in per_env.items():
        lines += _env_section(env, table, settings)
    lines += _aggregate_section(agg, list(studies), reference_note, settings)
    return "\n".join(lines) + "\n"


def _colors(studies: tp.Sequence[str]) -> dict[str, str]:
    return {s: f"C{i % 10}" for i, s in enumerate(studies)}


def curves_figure(
    chosen: tp.Mapping[str, dict[str, Selected]], envs: list[str], title: str, ylabel: str
) -> Figure:
    """One panel per env: each study's mean return per update and its interval over seeds
    (Student's t), against env steps, one colour per study in every panel."""
    colors = _colors(list(chosen))
    selected = {s for s, by_env in chosen.items() if any(v.n_configs > 1 for v in by_env.values())}
    cols = min(max(len(envs), 1), 3)
    rows = max(math.ceil(len(envs) / cols), 1)
    fig = Figure(figsize=(4.5 * cols, 3.4 * rows + 0.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, env in zip(axes, envs, strict=False):
        for study, by_env in chosen.items():
            if env not in by_env:
                continue
            sel = by_env[env]
            mean, low, high = t_interval(sel.curve, axis=0)
            c = colors[study]
            ax.plot(sel.env_steps, mean, color=c, linewidth=1.5)
            ax.fill_between(sel.env_steps, low, high, color=c, alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[len(envs) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], color=c, linewidth=2, label=s + ("*" if s in selected else ""))
        for s, c in colors.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), cols))
    fig.suptitle(title)
    return fig


def aggregate_figure(rows: list[AggregateRow], studies: list[str], title: str) -> Figure:
    """Each study's IQM of normalised scores with its interval, one row per study."""
    colors = _colors(studies)
    fig = Figure(figsize=(6.5, 1.5 + 0.45 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, r in enumerate(rows):
        value, low, high = r.iqm
        if not math.isfinite(value):
            continue
        err = [[value - low], [high - value]] if math.isfinite(low) else None
        ax.errorbar([value], [i], xerr=err, fmt="o", color=colors[r.study], capsize=4)
    ax.set_yticks(range(len(rows)), [r.study for r in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("IQM of scores normalised per env")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title)
    return fig


def save_figure(fig: Figure, base: Path) -> list[Path]:
    """Write ``fig`` as ``base.png`` and ``base.svg``, each atomically."""
    out = []
    for fmt in FORMATS:
        final = base.with_name(f"{base.name}.{fmt}")
        with files.building(final) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110)
            out.append(files.publish(tmp, final, replace=True))
    return out


def read_reference(path: Path, envs: tp.Iterable[str]) -> dict[str, tuple[float, float]]:
    """``{env: [low, high]}`` from a JSON file, for every env in ``envs``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read it as JSON ({err}); write {{env: [low, high]}}")
    out = {}
    for env in envs:
        value = data.get(env) if isinstance(data, dict) else None
        ok = isinstance(value, list) and len(value) == 2
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        if not ok:
            raise UserError(f'{path}: no reference for {env}; add "{env}": [low, high]')
        if not value[1] > value[0]:
            raise UserError(f"{path}: {env}: high {value[1]} must exceed low {value[0]}")
        out[env] = (float(value[0]), float(value[1]))
    return out


def reference_ranges(
    reference: Path | None, chosen: tp.Mapping[str, dict[str, Selected]]
) -> tuple[dict[str, tuple[float, float]] | None, str]:
    """The stated reference scores of the envs every study has (None: the observed range), and
    how the table names them."""
    if reference is None:
        return None, "0 and 1: the lowest and highest run of any study in that env"
    shared = set.intersection(*(set(by_env) for by_env in chosen.values()))
    return read_reference(
        reference, sorted(shared)
    ), f"0 and 1: the reference scores in {reference}"


def write_figures(
    base: Path,
    chosen: tp.Mapping[str, dict[str, Selected]],
    envs: list[str],
    agg: Aggregate,
    settings: Settings,
) -> list[Path]:
    """``<base>_curves`` and ``<base>_aggregate``, each as PNG and SVG."""
    what = metric_names(settings.measure, settings.discounted)
    level = f"{settings.confidence:.0%}"
    title = f"mean, {level} CI over seeds (Student's t)\n* = best of several configs by "
    title += f"{settings.measure} ({what})"
    curves = curves_figure(chosen, envs, title, metric_names("auc", settings.discounted))
    written = save_figure(curves, base.with_name(base.name + "_curves"))
    title = f"IQM of normalised {what}\n{level} CI, stratified bootstrap (runs within each env)"
    fig = aggregate_figure(agg.rows, list(chosen), title)
    return written + save_figure(fig, base.with_name(base.name + "_aggregate"))


def run_compare(
    dirs: tp.Sequence[Path],
    out: Path,
    settings: Settings = Settings(),
    reference: Path | None = None,
    console: Console | None = None,
    progress: bool = True,
    partial: bool = False,
) -> str:
    """Parse where needed, compare, write the Markdown table and the figures; returns the
    Markdown (also printed).

    A study with corrupt stores or planned cells without data stops everything with a one-line
    ``UserError`` before anything is written, unless ``partial``: then the table names its gaps.
    """
    console = console or make_console()
    studies = {Path(d).name: Path(d) for d in dirs}
    scores = {
        s: current_scores(d, settings.discounted, console, progress) for s, d in studies.items()
    }
    gaps = {studies[s]: study_gaps(ds) for s, ds in scores.items()}
    gaps = {d: g for d, g in gaps.items() if g["missing"] or g["corrupt"]}
    if gaps and not partial:
        raise UserError(refusal(gaps))
    chosen = {s: select(ds, settings) for s, ds in scores.items()}
    envs = sorted({e for by_env in chosen.values() for e in by_env})
    per_env = {env: env_table(env, chosen, settings) for env in envs}
    ranges, note = reference_ranges(reference, chosen)
    agg = aggregate(chosen, ranges, settings)
    text = markdown(studies, per_env, agg, note, settings)
    if gaps:
        text += "\nPartial: " + "; ".join(f"{d}: {describe_gaps(g)}" for d, g in gaps.items())
        text += ".\n"
    out.mkdir(parents=True, exist_ok=True)
    base = out / stem(settings)
    written = [files.write_text(base.with_name(base.name + ".md"), text)]
    written += write_figures(base, chosen, envs, agg, settings)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in written), highlight=False, soft_wrap=True)
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweepax.results.compare",
        description="Compare studies per env (learning curves with 95%% intervals over seeds, "
        "scores, the probability that each study beats each other one) and across envs (IQM "
        "of per-env normalised scores), parsing first where scores.zarr is missing or stale.",
    )
    add_study_arguments(p)
    p.add_argument(
        "--measure",
        choices=[m for m in MEASURES if m != "last-k"],
        default="final",
        help="final: return of the evaluation rollout after training; auc: mean return over "
        "all updates (default: final)",
    )
    p.add_argument("--discounted", action="store_true", help="compare discounted returns")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the table and figures (default: <results-dir>/compare)",
    )
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help='JSON {"env": [low, high]} scores that normalise to 0 and 1 (default: the lowest '
        "and highest run of any study in each env)",
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=N_RESAMPLES,
        help=f"bootstrap resamples, at least {MIN_RESAMPLES} (default: {N_RESAMPLES})",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument(
        "--partial",
        action="store_true",
        help="compare what is there even if planned cells are missing or stores are corrupt; "
        "the table then names them (default: refuse, exit 2)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar while parsing")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    dirs = study_dirs(args.study_dirs, args.results_dir)
    if len(dirs) < 2:
        raise UserError(
            f"compare needs two or more studies, got {len(dirs)} "
            f"({', '.join(str(d) for d in dirs)}); name them: results/<a> results/<b>"
        )
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        raise UserError(f"two study folders share a name ({', '.join(map(str, dirs))}); rename one")
    for d in dirs:
        if not all_complete_stores(d) and not (d / SCORES).is_dir():
            raise UserError(
                f"{d}: no complete task stores and no {SCORES}; run the tasks first "
                "(`nox -s status` lists which are missing)"
            )
    if args.resamples < MIN_RESAMPLES:
        raise UserError(f"--resamples {args.resamples}: use at least {MIN_RESAMPLES}")
    settings = Settings(args.measure, args.discounted, args.resamples, args.seed)
    out = args.out if args.out is not None else args.results_dir / "compare"
    run_compare(
        dirs, out, settings, args.reference, progress=not args.no_progress, partial=args.partial
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
