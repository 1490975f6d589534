"""Best hyperparameters per env from ``scores.zarr``: JSON record, table and learning curves.

Usage: ``python -m sweepax.results.best [STUDY_DIR ...] [--measure auc|final] [--discounted]``.
Writes ``STUDY_DIR/best_<measure>[_discounted].json`` and ``.png``; with several studies also
``<results-dir>/best_<measure>[_discounted].png`` comparing every study's winner per env.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr
from rich.console import Console
from rich.table import Table

from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.results.parse import ENV, SCORES, add_study_arguments, parse_study, study_dirs
from sweepax.results.plots import Curve, plot_curves, seed_mean_sem
from sweepax.results.store import all_complete_stores, open_zarr, read_attrs
from sweepax.results.values import jsonable, nanmean

MEASURES = ("auc", "final")


def metric_names(measure: str, discounted: bool) -> str:
    """The scores variable a measure reads."""
    if measure == "auc":
        return "discounted_return" if discounted else "episode_return"
    if measure == "final":
        return "final_discounted_return" if discounted else "final_return"
    raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")


def output_stem(measure: str, discounted: bool) -> str:
    """``best_<measure>[_discounted]``."""
    return f"best_{measure}" + ("_discounted" if discounted else "")


def per_seed_scores(scores: xr.Dataset, measure: str, discounted: bool) -> xr.DataArray:
    """Score of every (env, hyperparameters..., seed) cell; NaN where the cell has no data.

    ``auc``: mean over updates of ``episode_return`` (``discounted_return``), skipping updates in
    which no episode ended. ``final``: ``final_return`` (``final_discounted_return``).
    """
    var = scores[metric_names(measure, discounted)]
    if measure == "final":
        return var
    values = nanmean(var.transpose(..., "update").values, axis=-1)
    dims = [d for d in var.transpose(..., "update").dims if d != "update"]
    return xr.DataArray(values, dims=dims, coords={d: scores[d] for d in dims})


def best(scores: xr.Dataset, measure: str = "auc", discounted: bool = False) -> dict[str, tp.Any]:
    """The winning hyperparameters per env.

    Parameters
    ----------
    scores
        The Dataset written by ``parse_study`` (dims env, hyperparameters..., seed[, update]).
    measure
        ``auc`` (mean return over training) or ``final`` (return of the evaluation rollout after
        training); see ``per_seed_scores``.
    discounted
        Use the discounted returns instead of the undiscounted ones.

    Returns
    -------
    dict
        ``{"study", "measure", "discounted", "hparams" (varying names), "fixed", "envs"}`` where
        ``envs[env]`` holds ``hparams`` (winning values of every varying dim, then the fixed ones),
        ``score`` (mean over seeds), ``std`` (ddof=1, 0 for one seed), ``sem``, ``n_seeds``,
        ``seeds`` and ``per_seed`` (same order), ``measure``, ``discounted``, ``store`` (path of
        the store that provided most of the winner's seeds) and ``config_index`` (its row along
        that store's ``config`` dim). A config's score is the mean over the seeds that have a
        score; a config with none never wins. Ties go to the first config in sorted coordinate
        order (the first hyperparameter dim varying slowest). An env where no config has data
        gets ``score: None`` and a ``reason``.
    """
    attrs = read_attrs(scores.attrs)
    varying = [d for d in attrs.get("hparams", []) if d in scores.dims]
    fixed = dict(attrs.get("fixed") or {})
    stores = attrs.get("stores") or []
    order = (ENV, *varying, "seed")
    seed_scores = per_seed_scores(scores, measure, discounted).transpose(*order).values
    store_index = scores["store_index"].transpose(*order).values
    config_index = scores["config_index"].transpose(*order).values
    seeds = scores["seed"].values.tolist()
    common = {"measure": measure, "discounted": bool(discounted)}
    envs: dict[str, tp.Any] = {}
    for e, env in enumerate(scores[ENV].values.tolist()):
        cells = seed_scores[e]  # (hparams..., seed)
        k = winning_row(cells.reshape(-1, len(seeds)))
        if k is None:
            envs[str(env)] = {**NO_WINNER, **common}
            continue
        idx = tuple(int(i) for i in np.unravel_index(k, cells.shape[:-1])) if varying else ()
        hparams = {d: scores[d].values.tolist()[i] for d, i in zip(varying, idx, strict=True)}
        store, row = source_row(store_index[e][idx], config_index[e][idx])
        envs[str(env)] = {
            "hparams": {**hparams, **fixed},
            **seed_summary(cells[idx], seeds),
            **common,
            "store": stores[store]["path"] if store is not None and store < len(stores) else None,
            "config_index": row,
        }
    return jsonable(
        {
            "study": attrs.get("study"),
            "measure": measure,
            "discounted": bool(discounted),
            "hparams": varying,
            "fixed": fixed,
            "envs": envs,
        }
    )


NO_WINNER = {
    "hparams": None,
    "score": None,
    "std": None,
    "sem": None,
    "n_seeds": 0,
    "seeds": [],
    "per_seed": [],
    "store": None,
    "config_index": None,
    "reason": "no config has data for this measure",
}


def winning_row(scores: np.ndarray) -> int | None:
    """The row of ``scores`` (config, seed) with the highest mean over its finite seeds; the
    first such row on ties; None when no row has a finite score."""
    n = np.isfinite(scores).sum(axis=1)
    if not np.any(n > 0):
        return None
    return int(np.argmax(np.where(n > 0, nanmean(scores, axis=1), -np.inf)))


def seed_summary(scores: np.ndarray, seeds: list[int]) -> dict[str, tp.Any]:
    """Mean, std (ddof=1, 0 for one seed), sem and the per-seed values of one config's
    (seed,) scores, over the seeds that have a finite score."""
    ok = np.isfinite(scores)
    per_seed = scores[ok]
    std = float(np.std(per_seed, ddof=1)) if per_seed.size > 1 else 0.0
    return {
        "score": float(nanmean(scores, axis=-1)),
        "std": std,
        "sem": std / float(np.sqrt(per_seed.size)),
        "n_seeds": int(per_seed.size),
        "seeds": [int(s) for s, good in zip(seeds, ok, strict=True) if good],
        "per_seed": [float(x) for x in per_seed],
    }


def source_row(store_index: np.ndarray, config_index: np.ndarray) -> tuple[int | None, int | None]:
    """``(store, config row)`` that provided most of one config's seeds, or (None, None)."""
    have = [
        (int(s), int(r))
        for s, r in zip(store_index.reshape(-1), config_index.reshape(-1), strict=True)
        if s >= 0
    ]
    if not have:
        return None, None
    return collections.Counter(have).most_common(1)[0][0]


def winner_curve(
    scores: xr.Dataset, env: str, result: dict[str, tp.Any], discounted: bool, label: str
) -> Curve:
    """The winner's per-update return, mean ± sem over seeds, against env_steps."""
    varying = [d for d in read_attrs(scores.attrs).get("hparams", []) if d in scores.dims]
    where = {ENV: env, **{d: result["hparams"][d] for d in varying}}
    metric = "discounted_return" if discounted else "episode_return"
    cell = scores[metric].sel(where).transpose("seed", "update")
    mean, sem = seed_mean_sem(cell.values)
    steps = scores["env_steps"]
    steps = steps.sel({k: v for k, v in where.items() if k in steps.dims})
    return Curve(label, np.asarray(steps.values, dtype=np.float64), mean, sem)


def open_scores(study_dir: Path) -> xr.Dataset:
    """Open ``study_dir/scores.zarr`` (loaded into memory, attrs decoded)."""
    ds = open_zarr(Path(study_dir) / SCORES)
    ds = ds.load()
    ds.attrs = read_attrs(ds.attrs)
    return ds


def _is_stale(study_dir: Path) -> bool:
    """True when scores.zarr is missing, unreadable, or not made from the current stores."""
    path = Path(study_dir) / SCORES
    try:
        meta = json.loads((path / "zarr.json").read_text())["attributes"]
        used = {Path(s["path"]).name: s["completed_at"] for s in meta["stores"]}
    except (OSError, ValueError, KeyError, TypeError):
        return True
    now = {i["path"].name: i["completed_at"] for i in all_complete_stores(study_dir)}
    return bool(now) and used != now  # no stores (synced results only): use scores.zarr as is


def _shown_names(results: list[dict[str, tp.Any]]) -> dict[str, list[str]]:
    """Per study, the hyperparameters worth a table column: the ones it sweeps, plus fixed ones
    whose value differs between the studies shown (e.g. ``memoryless``)."""
    fixed = [r.get("fixed") or {} for r in results]
    keys = sorted({k for f in fixed for k in f})
    differ = [k for k in keys if len({json.dumps(f.get(k)) for f in fixed}) > 1]
    return {
        str(r.get("study")): [*r["hparams"], *(k for k in differ if k in f)]
        for r, f in zip(results, fixed, strict=True)
    }


def _table(
    rows: list[tuple[str, str, dict]], measure: str, discounted: bool, shown: dict[str, list[str]]
) -> Table:
    what = metric_names(measure, discounted)
    table = Table(title=f"best by {measure} ({what})")
    for col in ("study", "env", "hyperparameters", "score ± sem", "seeds"):
        table.add_column(col, justify="right" if col in ("score ± sem", "seeds") else "left")
    for study, env, r in rows:
        if r["score"] is None:
            table.add_row(study, env, r.get("reason", ""), "-", "0")
            continue
        hp = ", ".join(f"{k}={r['hparams'][k]}" for k in shown.get(study, r["hparams"]))
        table.add_row(study, env, hp, f"{r['score']:.4g} ± {r['sem']:.2g}", str(r["n_seeds"]))
    return table


def run_best(
    dirs: list[Path],
    measure: str,
    discounted: bool,
    results_dir: Path,
    console: Console | None = None,
    progress: bool = True,
) -> list[dict[str, tp.Any]]:
    """Parse where needed, then find, record, print and plot the winners of each study."""
    console = console or make_console()
    stem = output_stem(measure, discounted)
    ylabel = metric_names("auc", discounted)
    title = f"best by {measure} ({metric_names(measure, discounted)})"
    rows, results = [], []
    comparison: dict[str, list[Curve]] = collections.defaultdict(list)
    for d in dirs:
        if _is_stale(d):
            parse_study(d, progress=progress, discounted=discounted, console=console)
        scores = open_scores(d)
        result = best(scores, measure, discounted)
        result["scores"] = str(Path(d) / SCORES)
        study = str(result.get("study") or Path(d).name)
        (Path(d) / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        panels: dict[str, list[Curve]] = {}
        for env, r in result["envs"].items():
            rows.append((study, env, r))
            if r["score"] is None:
                panels[env] = []
                continue
            label = (
                ", ".join(f"{k}={v}" for k, v in r["hparams"].items() if k in result["hparams"])
                or study
            )
            panels[env] = [winner_curve(scores, env, r, discounted, label)]
            comparison[env].append(panels[env][0]._replace(label=study))
        plot_curves(panels, Path(d) / f"{stem}.png", title=f"{study}: {title}", ylabel=ylabel)
        console.print(
            f"wrote {Path(d) / f'{stem}.json'} and {Path(d) / f'{stem}.png'}",
            highlight=False,
            soft_wrap=True,
        )
        results.append(result)
    if len(dirs) > 1:
        out = plot_curves(
            dict(sorted(comparison.items())),
            Path(results_dir) / f"{stem}.png",
            title=title,
            ylabel=ylabel,
        )
        console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    console.print(_table(rows, measure, discounted, _shown_names(results)))
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweepax.results.best",
        description="Best hyperparameters per env of each study: best_<measure>[_discounted]"
        ".json and .png in the study folder (parsing first where scores.zarr is missing or "
        "older than the stores); with several studies also a comparison plot in --results-dir.",
    )
    add_study_arguments(p)
    p.add_argument(
        "--measure",
        choices=MEASURES,
        default="auc",
        help="auc: mean return over all updates (area under the learning curve); "
        "final: return of the evaluation rollout after training (default: auc)",
    )
    p.add_argument(
        "--discounted",
        action="store_true",
        help="rank by discounted returns (discounted_return / final_discounted_return)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar while parsing")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    dirs = study_dirs(args.study_dirs, args.results_dir)
    for d in dirs:
        if not all_complete_stores(d) and not (d / SCORES).is_dir():
            raise UserError(
                f"{d}: no complete task stores and no {SCORES}; run the tasks first "
                "(`nox -s status` lists which are missing)"
            )
    run_best(dirs, args.measure, args.discounted, args.results_dir, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
