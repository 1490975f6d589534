"""What the recorded experiments share: running sweepax's commands from an experiment's folder,
sweep files with a few values overridden (the rest of the file as written), and, for the
experiments at POBAX's ``best/`` settings, the run from sweep files to compare figures and the
results table."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import typing as tp
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sweepax(out: Path, module: str, *args: str) -> None:
    """``python -m sweepax.<module> args``, from ``out``; stop the experiment if it fails."""
    command = [sys.executable, "-m", f"sweepax.{module}", *args]
    print(f"$ python -m sweepax.{module} {' '.join(args)}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if subprocess.run(command, cwd=out, env=env).returncode:
        raise SystemExit(f"sweepax.{module} failed; fix it and run the experiment again")


def with_overrides(text: str, values: dict, why: str) -> str:
    """A sweep file's text with ``values`` set in every ``args`` dict (formatted as ruff would)."""
    literal = lambda v: json.dumps(v) if isinstance(v, str) else repr(v)  # noqa: E731
    items = "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in values.items()) + "}"
    call = f"    _args.update({items})"
    if len(call) > 99:  # the project's line length
        call = f"    _args.update(\n        {items}\n    )"
    return text + f'\n# {why}\nfor _args in hparams["args"]:\n{call}\n'


def write_best_sweeps(
    out: Path, studies: tp.Iterable[str], budget: dict, why: str, extra: tp.Mapping = {}
) -> list[str]:
    """``sweeps/<study>.py``: POBAX's file from ``pobax_best/`` with ``budget`` (and the study's
    ``extra`` values, if any) set in every ``args`` dict; the paths, relative to ``out``."""
    (out / "sweeps").mkdir(exist_ok=True)
    paths = []
    for name in studies:
        text = (out / "pobax_best" / f"{name}.py").read_text()
        values = {**budget, **extra.get(name, {})}
        (out / "sweeps" / f"{name}.py").write_text(with_overrides(text, values, why))
        paths.append(f"sweeps/{name}.py")
    return paths


def write_results(
    out: Path, studies: tp.Mapping[str, str], head: tp.Callable[[dict, dict], str]
) -> None:
    """``results.md`` (one row per study, 95% t intervals over seeds, beside ``studies[study]``,
    the published value; a study without a complete run says so) and ``results.csv`` (one row
    per study x seed). ``head(static, provenance)`` (the last complete study's) is the text
    above the table, ending in its header rows."""
    from sweepax.results.stats import mean_ci
    from sweepax.results.store import complete_stores, open_store

    lines, per_seed = [], []
    for study, published in studies.items():
        stores = complete_stores(out / "results" / study)
        if not stores:
            lines.append(f"| {study} | 0 | no complete run | | {published} | | |")
            continue
        (store,) = stores.values()
        ds = open_store(store)
        static, prov = ds.attrs["static"], ds.attrs["provenance"]
        cells = {}
        for name in ("final_return", "final_discounted_return"):
            values = ds[name].values[0]
            ci = mean_ci(values)
            cells[name] = f"{ci.value:.2f} [{ci.low:.2f}, {ci.high:.2f}]"
        for i, seed in enumerate(ds["seed"].values):
            per_seed.append({
                "study": study, "seed": int(seed),
                "final_return": round(float(ds["final_return"].values[0, i]), 4),
                "final_discounted_return": round(
                    float(ds["final_discounted_return"].values[0, i]), 4
                ),
                "final_episodes": int(ds["final_episodes"].values[0, i]),
            })  # fmt: skip
        lines.append(
            f"| {study} | {ds.sizes['seed']} | {cells['final_return']} | "
            f"{cells['final_discounted_return']} | {published} | {prov['run_seconds'] / 60:.0f} "
            f"min, {prov['env_steps_per_second']} | {prov['git']['commit'][:10]} |"
        )
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(per_seed[0]))
        writer.writeheader()
        writer.writerows(per_seed)
    (out / "results.md").write_text(head(static, prov) + "\n".join(lines) + "\n")
    print((out / "results.md").read_text())


def run_best(
    out: Path, studies: tp.Sequence[str], sweep_files: list[str], parallel: str, launch=None
) -> None:
    """``write_jobs`` the sweep files, ``run_local`` the studies (in the order ``launch``, else
    as given; one ``--parallel`` pool), ``parse`` them and, if there are several, ``compare``
    their final returns, undiscounted and discounted (``compare_final*.md`` and figures in
    ``out``)."""
    dirs = [f"results/{name}" for name in studies]
    sweepax(out, "sweep.write_jobs", *sweep_files)
    sweepax(out, "launch.local", *(launch or studies), "--parallel", parallel)
    sweepax(out, "results.parse", *dirs, "--no-progress")
    for discounted in ((), ("--discounted",)) if len(dirs) > 1 else ():
        sweepax(out, "results.compare", *dirs, "--measure", "final", *discounted, "--out", ".",
                "--no-progress")  # fmt: skip


COMPARED = (
    "The probability that each study beats each other: [compare_final.md](compare_final.md) and "
    "[compare_final_discounted.md](compare_final_discounted.md); learning curves: "
    "[compare_final_curves.png](compare_final_curves.png)."
)


def best_head(
    title: str, script: str, note: str, published: str, figures: str = COMPARED
) -> tp.Callable[[dict, dict], str]:
    """``write_results``'s ``head`` for an experiment at POBAX's ``best/`` settings: ``title`` (at
    so many env steps), what wrote it, ``figures`` (where the comparison and curves are),
    ``note`` (a paragraph), the header rows with ``published`` as the column of POBAX's values."""

    def head(static: dict, prov: dict) -> str:
        return (
            f"# {title}, {static['total_steps']:,} env steps\n\n"
            f"Written by `PYTHONPATH=src python experiments/{script}` (its docstring gives the "
            f"protocol), device {prov.get('device_kind', 'cpu')}. Final return: the evaluation "
            f"rollout after training ({static['eval_steps']} steps x {static['num_eval_envs']} "
            f"envs, sampled actions), mean over seeds [95% t interval]. {figures}\n\n{note}\n\n"
            f"| study | seeds | final return | final discounted return | {published} | "
            "run time, env steps/s | commit |\n|---|---|---|---|---|---|---|\n"
        )

    return head


def seed_table(out: Path, studies: tp.Iterable[str], variable: str, header: str) -> str:
    """A Markdown table of one per-seed result (``variable``, e.g. ``final_episodes``) per
    study: mean over seeds [95% t interval] and the seeds' values."""
    from sweepax.results.stats import mean_ci
    from sweepax.results.store import complete_stores, open_store

    rows = [f"| study | {header} | per seed |", "|---|---|---|"]
    for study in studies:
        (store,) = complete_stores(out / "results" / study).values()
        values = open_store(store)[variable].values[0]
        ci = mean_ci(values)
        each = ", ".join(f"{v:g}" for v in values)
        rows.append(f"| {study} | {ci.value:.2f} [{ci.low:.2f}, {ci.high:.2f}] | {each} |")
    return "\n".join(rows) + "\n"


def curve_slopes(out: Path, studies: tp.Iterable[str], per: int = 100_000) -> str:
    """A Markdown table of each study's learning curve: its slope (least squares of the mean
    return of the episodes ending in each update against env steps, per ``per`` steps, one fit
    per seed) and its level over the last tenth of the updates, each mean over seeds [95% t]."""
    from sweepax.results.stats import mean_ci
    from sweepax.results.store import complete_stores, open_store

    rows = [f"| study | curve slope per {per:,} env steps | curve over the last tenth |",
            "|---|---|---|"]  # fmt: skip
    for study in studies:
        (store,) = complete_stores(out / "results" / study).values()
        ds = open_store(store)
        steps, curves = ds["env_steps"].values.astype(float), ds["episode_return"].values[0]
        slopes, tails = [], []
        for curve in curves:  # one seed
            ok = np.isfinite(curve)
            slopes.append(np.polyfit(steps[ok], curve[ok], 1)[0] * per)
            tails.append(np.nanmean(curve[-max(len(curve) // 10, 1) :]))
        cells = [mean_ci(np.array(v)) for v in (slopes, tails)]
        rows.append(f"| {study} | " + " | ".join(
            f"{c.value:.1f} [{c.low:.1f}, {c.high:.1f}]" for c in cells) + " |")  # fmt: skip
    return "\n".join(rows) + "\n"
