"""Best hyperparameters per env from ``scores.zarr``: JSON record, table and learning curves.

Usage: ``python -m sweepax.results.best [STUDY_DIR ...] [--measure auc|final|last-k] [--last K]
[--discounted] [--partial] [--resamples N] [--seed S]``. Each winner comes with its probability
of being best (a bootstrap over each config's seeds), the uncertainty set and a 95% CI of its
score. Writes ``STUDY_DIR/best_<measure>[_discounted].json`` and ``.png`` (``<measure>``:
``auc``, ``final`` or ``last<K>``), and POBAX's ``best_hyperparam_per_env_res[_discounted].pkl``
of the same winners (``sweepax.results.pobax_pickles``); with several studies also
``<results-dir>/best_<measure>[_discounted].png`` comparing every study's winner per env. It
parses again whenever ``scores.zarr`` was not made from the stores as they are now, and refuses
(exit 2) a study with corrupt stores or planned cells without data unless ``--partial``.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr
from rich.console import Console
from rich.table import Table

from sweepax import files
from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.results import confirm as confirmation
from sweepax.results import pobax_pickles
from sweepax.results.parse import (
    ENV,
    SCORES,
    add_study_arguments,
    find_manifest,
    parse_study,
    study_dirs,
)
from sweepax.results.plots import Curve, plot_curves, seed_mean_sem
from sweepax.results.sensitivity import sensitivity, write_sensitivity
from sweepax.results.stats import (
    CONFIDENCE,
    MIN_RESAMPLES,
    N_RESAMPLES,
    UNCERTAINTY_THRESHOLD,
    bootstrap_best,
)
from sweepax.results.store import (
    CORRUPT,
    StoreState,
    all_complete_stores,
    open_zarr,
    read_attrs,
    store_state,
    study_stores,
)
from sweepax.results.values import jsonable, nanmean

MEASURES = ("auc", "final", "last-k")
LAST = 10  # default K of the last-k measure


def measure_name(measure: str, last: int = LAST) -> str:
    """``auc``, ``final`` or ``last<K>``: how file names and titles call a measure."""
    return f"last{last}" if measure == "last-k" else measure


def metric_names(measure: str, discounted: bool) -> str:
    """The scores variable a measure reads."""
    if measure in ("auc", "last-k"):
        return "discounted_return" if discounted else "episode_return"
    if measure == "final":
        return "final_discounted_return" if discounted else "final_return"
    raise ValueError(f"measure must be one of {MEASURES}, not {measure!r}")


def output_stem(measure: str, discounted: bool, last: int = LAST) -> str:
    """``best_<measure>[_discounted]``, the measure as ``measure_name`` calls it."""
    return f"best_{measure_name(measure, last)}" + ("_discounted" if discounted else "")


def last_k_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean over the last axis (update) of the last ``k`` finite values of each row: the last
    ``k`` updates in which an episode ended; NaN where a row has none."""
    ok = np.isfinite(values)
    from_end = np.cumsum(ok[..., ::-1], axis=-1)[..., ::-1]  # finite values from here on
    return nanmean(np.where(ok & (from_end <= k), values, np.nan), axis=-1)


def per_seed_scores(
    scores: xr.Dataset, measure: str, discounted: bool, last: int = LAST
) -> xr.DataArray:
    """Score of every (env, hyperparameters..., seed) cell; NaN where the cell has no data.

    ``auc``: mean over updates of ``episode_return`` (``discounted_return``), skipping updates in
    which no episode ended. ``last-k``: the same mean over the last ``last`` updates in which an
    episode ended (over all of them where fewer did). ``final``: ``final_return``
    (``final_discounted_return``).
    """
    var = scores[metric_names(measure, discounted)]
    if measure == "final":
        return var
    per_update = var.transpose(..., "update").values
    last_k = measure == "last-k"
    values = last_k_mean(per_update, last) if last_k else nanmean(per_update, axis=-1)
    dims = [d for d in var.transpose(..., "update").dims if d != "update"]
    return xr.DataArray(values, dims=dims, coords={d: scores[d] for d in dims})


def best(
    scores: xr.Dataset, measure: str = "auc", discounted: bool = False, last: int = LAST
) -> dict[str, tp.Any]:
    """The winning hyperparameters per env.

    Parameters
    ----------
    scores
        The Dataset written by ``parse_study`` (dims env, hyperparameters..., seed[, update]).
    measure
        ``auc`` (mean return over training), ``last-k`` (mean return of the last ``last``
        updates) or ``final`` (return of the evaluation rollout after training); see
        ``per_seed_scores``. With ``last-k`` the record and every env's record also hold
        ``last``.
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
    seed_scores = per_seed_scores(scores, measure, discounted, last).transpose(*order).values
    store_index = scores["store_index"].transpose(*order).values
    config_index = scores["config_index"].transpose(*order).values
    seeds = scores["seed"].values.tolist()
    common = {"measure": measure, "discounted": bool(discounted)}
    if measure == "last-k":
        common["last"] = int(last)
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
            **common,
            "hparams": varying,
            "fixed": fixed,
            "envs": envs,
        }
    )


CI_METHOD = "t"  # the interval of a mean over seeds that ``stats.mean_ci`` makes by default


def config_labels(scores: xr.Dataset, varying: list[str]) -> list[dict[str, tp.Any]]:
    """The swept values of every config, in the order of a ``(config, seed)`` reshape of the
    hyperparameter dims (the first dim varying slowest); ``[{}]`` when nothing varies."""
    values = [scores[d].values.tolist() for d in varying]
    return [dict(zip(varying, combo, strict=True)) for combo in itertools.product(*values)]


NO_CHOICE = {"p_best": None, "ci": None, "uncertainty_set": [], "configs": []}


def uncertainty(
    scores: xr.Dataset,
    measure: str = "auc",
    discounted: bool = False,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    last: int = LAST,
) -> dict[str, dict[str, tp.Any]]:
    """Per env, how sure the seeds make ``best``'s choice (``stats.bootstrap_best`` over the
    per-seed scores of every config, each config's seeds resampled on their own).

    Returns ``{env: {"p_best", "ci", "uncertainty_set", "configs"}}``: the winner's share of the
    ``n_resamples`` resamples (seeded by ``seed``) and the 95% Student-t interval of its mean
    over seeds (``[low, high]``, None with one seed); the configs that win at least 5% of the
    resamples, most probable first (their swept values); and every config with a score,
    ``{"hparams", "p_best", "score", "ci", "n_seeds"}``, most probable first (ties in sorted
    coordinate order). An env where no config has data gets ``NO_CHOICE``.
    """
    varying = [d for d in read_attrs(scores.attrs).get("hparams", []) if d in scores.dims]
    labels = config_labels(scores, varying)
    seed_scores = per_seed_scores(scores, measure, discounted, last)
    seed_scores = seed_scores.transpose(ENV, *varying, "seed")
    n_seeds = scores.sizes["seed"]
    out: dict[str, dict[str, tp.Any]] = {}
    for env, cells in zip(scores[ENV].values.tolist(), seed_scores.values, strict=True):
        cells = cells.reshape(-1, n_seeds)
        has = np.flatnonzero(np.isfinite(cells).any(axis=1))
        if not has.size:
            out[str(env)] = dict(NO_CHOICE)
            continue
        c = bootstrap_best(cells, n_resamples, seed, UNCERTAINTY_THRESHOLD, CONFIDENCE, CI_METHOD)
        ranked = sorted(has.tolist(), key=lambda i: (-c.probability[i], i))
        out[str(env)] = jsonable(
            {
                "p_best": c.probability[c.best],
                "ci": [c.low[c.best], c.high[c.best]],
                "uncertainty_set": [labels[i] for i in c.uncertainty_set],
                "configs": [
                    {
                        "hparams": labels[i],
                        "p_best": c.probability[i],
                        "score": c.mean[i],
                        "ci": [c.low[i], c.high[i]],
                        "n_seeds": c.n_seeds[i],
                    }
                    for i in ranked
                ],
            }
        )
        if not np.isfinite(c.low[c.best]):
            out[str(env)]["ci"] = None
        for config in out[str(env)]["configs"]:
            if config["ci"][0] is None:
                config["ci"] = None
    return out


def best_record(
    scores: xr.Dataset,
    measure: str = "auc",
    discounted: bool = False,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    last: int = LAST,
) -> dict[str, tp.Any]:
    """``best`` with, in every env's record, ``uncertainty``'s fields, and the bootstrap's
    settings under ``"bootstrap"``: what ``best_<measure>.json`` holds."""
    result = best(scores, measure, discounted, last)
    for env, extra in uncertainty(scores, measure, discounted, n_resamples, seed, last).items():
        result["envs"][env].update(extra)
    result["bootstrap"] = {
        "resamples": int(n_resamples),
        "seed": int(seed),
        "threshold": UNCERTAINTY_THRESHOLD,
        "confidence": CONFIDENCE,
        "ci_method": CI_METHOD,
    }
    return result


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
    """Open ``study_dir/scores.zarr`` (loaded into memory, attrs decoded); a store that fails to
    decode is a one-line ``UserError``."""
    path = Path(study_dir) / SCORES
    try:
        ds = open_zarr(path).load()
    except Exception as err:  # any decode error: name the file and the fix
        raise UserError(
            f"{path}: unreadable ({type(err).__name__}: {err}); parse it again with "
            f"`nox -s parse -- {study_dir}`"
        ) from None
    ds.attrs = read_attrs(ds.attrs)
    return ds


def is_stale(study_dir: Path, stores: list[StoreState]) -> bool:
    """True when ``scores.zarr`` is missing, damaged, or not made from exactly ``stores`` (the
    study's stores, fully checked: one more, one fewer, re-run, or corrupt since) and the
    manifest parse would read now (``runs/<study>.json``, which says what is planned)."""
    path = Path(study_dir) / SCORES
    if not store_state(path, full=True).complete:
        return True
    try:
        attrs = read_attrs(path)
        used = {Path(s["path"]).name: s["completed_at"] for s in attrs["stores"]}
        used.update({Path(c["path"]).name: CORRUPT for c in attrs.get("corrupt") or []})
    except (OSError, ValueError, KeyError, TypeError):
        return True
    now = {s.path.name: s.completed_at for s in stores if s.complete}
    now.update({s.path.name: CORRUPT for s in stores if s.state == CORRUPT})
    manifest = find_manifest(str(attrs.get("study") or Path(study_dir).name))
    planned = (str(manifest), files.sha256_file(manifest)) if manifest else (None, None)
    return used != now or planned != (attrs.get("manifest"), attrs.get("manifest_sha256"))


def current_scores(
    study_dir: Path, discounted: bool, console: Console, progress: bool = True
) -> xr.Dataset:
    """The study's scores, parsed again unless ``scores.zarr`` was made from the stores as
    they are now (every store checked in full). Without any store (results synced without
    ``--raw``) the ``scores.zarr`` there is used, if it is intact."""
    study_dir = Path(study_dir)
    stores = study_stores(study_dir, full=True)
    if stores:
        if is_stale(study_dir, stores):
            parse_study(study_dir, progress=progress, discounted=discounted, console=console)
        return open_scores(study_dir)
    state = store_state(study_dir / SCORES, full=True)
    if state.state == CORRUPT:
        raise UserError(
            f"{state.path}: corrupt ({state.reason}) and no task stores here to parse again; "
            "fetch it again (`nox -s sync -- HOST:PATH`)"
        )
    scores = open_scores(study_dir)
    console.print(
        f"{study_dir}: no task stores here; using {SCORES} as parsed at "
        f"{scores.attrs.get('parsed_at')}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return scores


def study_gaps(scores: xr.Dataset) -> dict[str, list[dict[str, tp.Any]]]:
    """What a winner of ``scores`` would be missing: ``missing`` (planned cells without data,
    corrupt tasks included) and ``corrupt`` (stores no intact copy replaces)."""
    attrs = read_attrs(scores.attrs)
    return {
        "missing": [m for m in attrs.get("missing") or [] if m.get("task_id")],
        "corrupt": [c for c in attrs.get("corrupt") or [] if not c.get("intact_copy")],
    }


def _few(items: list[str], shown: int = 3) -> str:
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def describe_gaps(gaps: dict[str, list[dict[str, tp.Any]]]) -> str:
    """``2 corrupt stores (path: reason, ...), 6 planned cells missing (tasks a, b)``."""
    parts = []
    if gaps["corrupt"]:
        named = [f"{c['path']}: {c['reason']}" for c in gaps["corrupt"]]
        parts.append(f"{len(named)} corrupt stores ({_few(named, 2)})")
    if gaps["missing"]:
        cells = sum(len(m["seeds"]) for m in gaps["missing"])
        tasks = sorted({m["task_id"] for m in gaps["missing"]})
        parts.append(f"{cells} planned (config, seed) cells missing (tasks {_few(tasks)})")
    return ", ".join(parts)


def refusal(gaps: dict[Path, dict[str, list[dict[str, tp.Any]]]]) -> str:
    """The one line ``best`` stops with when studies have gaps: what is missing and the fix."""
    bad = {d: g for d, g in gaps.items() if g["missing"] or g["corrupt"]}
    studies = " ".join(d.name for d in bad)
    fix = f"re-run them (`nox -s run_local -- {studies}` or `nox -s submit -- {studies} --missing`)"
    if any(g["corrupt"] for g in bad.values()):
        fix = (
            f"remove the corrupt stores (`nox -s clean -- {' '.join(str(d) for d in bad)} "
            f"--corrupt`) and {fix}"
        )
    what = "; ".join(f"{d}: {describe_gaps(g)}" for d, g in bad.items())
    return f"{what}; a winner without them may be wrong: {fix}, or pass --partial"


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


def _table(rows: list[tuple[str, str, dict]], title: str, shown: dict[str, list[str]]) -> Table:
    table = Table(title=title)
    numbers = ("score ± sem", "seeds", "P(best)", "95% CI")
    for col in ("study", "env", "hyperparameters", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")
    for study, env, r in rows:
        if r["score"] is None:
            table.add_row(study, env, r.get("reason", ""), "-", "0", "-", "-")
            continue
        hp = ", ".join(f"{k}={r['hparams'][k]}" for k in shown.get(study, r["hparams"]))
        table.add_row(
            study,
            env,
            hp,
            f"{r['score']:.4g} ± {r['sem']:.2g}",
            str(r["n_seeds"]),
            _p_best_text(r),
            "-" if not r.get("ci") else f"[{r['ci'][0]:.4g}, {r['ci'][1]:.4g}]",
        )
    return table


def _p_best_text(r: dict[str, tp.Any]) -> str:
    """``0.62 (set of 3)``: the winner's probability of being best, and how many configs win
    at least 5% of the resamples."""
    if r.get("p_best") is None:
        return "-"
    return f"{r['p_best']:.2f} (set of {len(r['uncertainty_set'])})"


class Confirm(tp.NamedTuple):
    """What ``best --confirm`` writes: the winner (``top`` None) or the ``top`` most probable
    configs per env, on ``n_seeds`` fresh seeds; ``force`` replaces an existing file."""

    top: int | None = None
    n_seeds: int = confirmation.N_SEEDS
    force: bool = False


def run_best(
    dirs: list[Path],
    measure: str,
    discounted: bool,
    results_dir: Path,
    console: Console | None = None,
    progress: bool = True,
    partial: bool = False,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    last: int = LAST,
    confirm: Confirm | None = None,
) -> list[dict[str, tp.Any]]:
    """Parse where needed, then find, record, print and plot the winners of each study, each
    with its probability of being best (``n_resamples`` bootstrap resamples seeded by ``seed``);
    with ``confirm``, also write each study's confirmation sweep file (``sweepax.results.confirm``).

    A study with corrupt stores or planned cells without data stops everything with a one-line
    ``UserError`` before anything is written, unless ``partial``: then its record says
    ``"partial": true`` and lists the ``missing`` cells and ``corrupt`` stores. So does a
    confirmation file that exists (unless ``confirm.force``) or a sweep file that is gone.
    """
    console = console or make_console()
    studies = {Path(d): current_scores(d, discounted, console, progress) for d in dirs}
    gaps = {d: study_gaps(scores) for d, scores in studies.items()}
    if not partial and any(g["missing"] or g["corrupt"] for g in gaps.values()):
        raise UserError(refusal(gaps))
    if measure == "last-k":
        check_last(studies, last)
    view = View(measure, discounted, last)
    records = {
        d: best_record(scores, measure, discounted, n_resamples, seed, last)
        for d, scores in studies.items()
    }
    confirmations = plan_confirmations(studies, records, view, confirm)
    rows, results = [], []
    comparison: dict[str, list[Curve]] = collections.defaultdict(list)
    for d, scores in studies.items():
        result = mark_partial(records[d], gaps[d], d, view, console)
        for env, curve in write_study(d, scores, result, view, console).items():
            comparison[env].append(curve)
        rows += [(str(result.get("study") or d.name), env, r) for env, r in result["envs"].items()]
        results.append(result)
    if len(dirs) > 1:
        path = Path(results_dir) / f"{view.stem}.png"
        out = plot_curves(dict(sorted(comparison.items())), path, view.title, view.ylabel)
        console.print(f"wrote {out}", highlight=False, soft_wrap=True)
    console.print(_table(rows, view.title, _shown_names(results)))
    for path, text in confirmations.items():
        confirmation.write(path, text)
        console.print(
            f"wrote {path}: plan it with `nox -s write_jobs -- {path}`",
            highlight=False,
            soft_wrap=True,
        )
    return results


class View(tp.NamedTuple):
    """How a run of ``best`` names and labels what it writes."""

    measure: str
    discounted: bool
    last: int

    @property
    def stem(self) -> str:
        """``best_<measure>[_discounted]``."""
        return output_stem(self.measure, self.discounted, self.last)

    @property
    def what(self) -> str:
        """The measure and the variable it reads, e.g. ``auc (episode_return)``."""
        metric = metric_names(self.measure, self.discounted)
        return f"{measure_name(self.measure, self.last)} ({metric})"

    @property
    def title(self) -> str:
        return f"best by {self.what}"

    @property
    def ylabel(self) -> str:
        """The per-update return the curves show."""
        return metric_names("auc", self.discounted)


def plan_confirmations(
    studies: tp.Mapping[Path, xr.Dataset],
    records: tp.Mapping[Path, dict[str, tp.Any]],
    view: View,
    confirm: Confirm | None,
) -> dict[Path, str]:
    """Each study's confirmation file (path -> text), checked before anything is written."""
    if confirm is None:
        return {}
    out = {}
    for d, result in records.items():
        path, text = confirmation.confirmation_text(
            d, studies[d], result, confirm.top, confirm.n_seeds, view.what
        )
        confirmation.check_target(path, confirm.force)
        out[path] = text
    return out


def mark_partial(
    result: dict[str, tp.Any],
    gaps: dict[str, list[dict[str, tp.Any]]],
    study_dir: Path,
    view: View,
    console: Console,
) -> dict[str, tp.Any]:
    """``result`` with where its scores came from and, when the study has gaps, ``partial``."""
    result["scores"] = str(study_dir / SCORES)
    result["partial"] = bool(gaps["missing"] or gaps["corrupt"])
    if result["partial"]:
        result.update(gaps)
        console.print(
            f"warning: {study_dir}: partial result, {describe_gaps(gaps)} "
            f"(recorded in {study_dir / f'{view.stem}.json'})",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    return result


def write_study(
    study_dir: Path, scores: xr.Dataset, result: dict[str, tp.Any], view: View, console: Console
) -> dict[str, Curve]:
    """Write one study's JSON record, POBAX best pickle, winners' curves and sensitivity figure;
    its winner's curve per env (labelled with the study) for the comparison across studies."""
    study = str(result.get("study") or study_dir.name)
    files.write_json(study_dir / f"{view.stem}.json", result, indent=2)
    pickled = pobax_pickles.write_best(study_dir, scores, result, view.measure, view.discounted)
    panels: dict[str, list[Curve]] = {}
    winners: dict[str, Curve] = {}
    for env, r in result["envs"].items():
        if r["score"] is None:
            panels[env] = []
            continue
        label = (
            ", ".join(f"{k}={v}" for k, v in r["hparams"].items() if k in result["hparams"])
            or study
        )
        panels[env] = [winner_curve(scores, env, r, view.discounted, label)]
        winners[env] = panels[env][0]._replace(label=study)
    title = f"{study}: {view.title}"
    written = [
        study_dir / f"{view.stem}.json",
        pickled,
        plot_curves(panels, study_dir / f"{view.stem}.png", title=title, ylabel=view.ylabel),
    ]
    lines = sensitivity(per_seed_scores(scores, view.measure, view.discounted, view.last), scores)
    figure = write_sensitivity(
        lines,
        study_dir / f"{view.stem}_sensitivity.png",
        f"{title}, best over the other hyperparameters, 95% CI (Student's t)",
        metric_names(view.measure, view.discounted),
    )
    written += [figure] if figure else []
    console.print(
        f"wrote {', '.join(map(str, written[:-1]))} and {written[-1]}",
        highlight=False,
        soft_wrap=True,
    )
    return winners


def check_last(studies: tp.Mapping[Path, xr.Dataset], last: int) -> None:
    """Refuse a ``--last`` below 1 or above a study's number of updates (one line)."""
    if last < 1:
        raise UserError(f"--last {last}: use at least 1 (the last K updates)")
    for d, scores in studies.items():
        if last > scores.sizes["update"]:
            raise UserError(
                f"--last {last}: {d} has {scores.sizes['update']} updates; use at most "
                f"{scores.sizes['update']} (or --measure auc for all of them)"
            )


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
        "final: return of the evaluation rollout after training; last-k: mean return over the "
        "last K updates in which an episode ended (--last) (default: auc)",
    )
    p.add_argument(
        "--last",
        type=int,
        default=None,
        metavar="K",
        help=f"K of --measure last-k (default: {LAST}); files are named best_last<K>",
    )
    p.add_argument(
        "--discounted",
        action="store_true",
        help="rank by discounted returns (discounted_return / final_discounted_return)",
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="rank what is there even if planned cells are missing or stores are corrupt; the "
        'JSON then says "partial": true and lists them (default: refuse, exit 2)',
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=N_RESAMPLES,
        help="bootstrap resamples of each config's seeds for P(best) and the uncertainty set, "
        f"at least {MIN_RESAMPLES} (default: {N_RESAMPLES})",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="also write <sweep folder>/best/<study>_best.py: the winner per env with fresh "
        "seeds (the sweep's largest + 1 onwards), to re-run for an unbiased score",
    )
    p.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="K",
        help="with --confirm: the K most probable configs per env instead of the winner",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=confirmation.N_SEEDS,
        metavar="N",
        help=f"with --confirm: fresh seeds per config (default: {confirmation.N_SEEDS})",
    )
    p.add_argument("--force", action="store_true", help="with --confirm: replace an existing file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while parsing")
    return p


def _confirm_options(args: argparse.Namespace) -> Confirm | None:
    """``--confirm`` and its options, checked (one-line errors)."""
    given = [f for f, v in (("--top", args.top), ("--force", args.force or None)) if v]
    given += ["--seeds"] if args.seeds != confirmation.N_SEEDS else []
    if not args.confirm:
        if given:
            raise UserError(f"{given[0]}: applies only with --confirm; add it")
        return None
    if args.top is not None and args.top < 1:
        raise UserError(f"--top {args.top}: use at least 1")
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: use at least 1")
    return Confirm(args.top, args.seeds, args.force)


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    if args.last is not None and args.measure != "last-k":
        raise UserError(f"--last {args.last}: applies only to --measure last-k; add it")
    last = LAST if args.last is None else args.last
    if last < 1:
        raise UserError(f"--last {last}: use at least 1 (the last K updates)")
    if args.resamples < MIN_RESAMPLES:
        raise UserError(f"--resamples {args.resamples}: use at least {MIN_RESAMPLES}")
    confirm = _confirm_options(args)
    dirs = study_dirs(args.study_dirs, args.results_dir)
    for d in dirs:
        if not all_complete_stores(d) and not (d / SCORES).is_dir():
            raise UserError(
                f"{d}: no complete task stores and no {SCORES}; run the tasks first "
                "(`nox -s status` lists which are missing)"
            )
    run_best(
        dirs,
        args.measure,
        args.discounted,
        args.results_dir,
        progress=not args.no_progress,
        partial=args.partial,
        n_resamples=args.resamples,
        seed=args.seed,
        last=last,
        confirm=confirm,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
