"""The recorded T-Maze 10 experiment, run with sweepax's own commands.

Each ``hyperparams/tmaze`` study is swept, its winner confirmed on fresh seeds, and the
confirmations compared; every step is a command a user runs (``python -m sweepax.<module>``, what
the nox sessions call), from ``experiments/tmaze10/`` so that its ``runs/``, ``results/`` and
``logs/`` stay there (git-ignored):

1. **sweep**: ``sweeps/<study>.py`` is the study's own sweep file with its grid unchanged and a
   smaller budget (``SWEEP``: 2 seeds x 5e4 env steps); ``write_jobs``, ``run_local``, ``parse``.
2. **confirm**: ``best --confirm --seeds 10`` picks each study's config by AUC (mean return over
   training) and writes ``sweeps/best/<study>_best.py`` (seeds after the sweep's, the sweep's
   env steps; ``--confirm-steps N`` trains them longer, e.g. the studies' own 1e6), and the
   experiment adds the ablation: recurrent PPO's winner with per-minibatch advantage
   normalisation (POBAX's default; the studies switch it off). ``write_jobs``, ``run_local``,
   ``parse``, ``best --measure final``.
3. **compare** the confirmations (``compare --measure final``: ``compare_final.md`` and the
   ``compare_final_curves`` / ``_aggregate`` figures) and write ``results.md`` (one row per
   study) and ``results.csv`` (one row per study x seed). A seed *solves* T-Maze 10 when its
   evaluation rollout after training (1000 steps x 4 envs, sampled actions) returns at least
   ``SOLVED`` (optimal 4.0 in 12 steps; guessing at the junction 1.95).

Complete tasks are skipped on a re-run (``run_local``), so an interrupted run resumes.

    PYTHONPATH=src python experiments/tmaze10.py [--parallel N] [--confirm-steps N]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from commands import ROOT, with_overrides
from commands import sweepax as run

OUT = ROOT / "experiments" / "tmaze10"
STUDIES = {  # study -> what was expected of it
    "tmaze_10_ppo": "optimal (4.0)",
    "tmaze_10_ppo_LD": "not worse than recurrent PPO",
    "tmaze_10_ppo_memoryless": "guessing (~1.95)",
    "tmaze_10_ppo_perfect_memory_memoryless": "optimal (4.0)",
    "tmaze_10_transformer": "(no expectation given)",
}
ABLATION = ("tmaze_10_ppo", "normalize_advantages", "ablation (POBAX default)")
SWEEP = {"n_seeds": 2, "total_steps": 50_000}
CONFIRM_SEEDS = 10
SOLVED = 3.9  # a policy that turns right 99 % of the time scores 3.95


def sweepax(module: str, *args: str) -> None:
    """``python -m sweepax.<module> args``, from ``OUT``."""
    run(OUT, module, *args)


def write_sweep_files() -> list[str]:
    """``sweeps/<study>.py``: each study's sweep file at the sweep stage's budget."""
    (OUT / "sweeps").mkdir(exist_ok=True)
    paths = []
    for name in STUDIES:
        text = (ROOT / "hyperparams" / "tmaze" / f"{name}.py").read_text()
        why = "experiments/tmaze10.py, sweep stage: the grid as above, fewer seeds and steps"
        (OUT / "sweeps" / f"{name}.py").write_text(with_overrides(text, SWEEP, why))
        paths.append(f"sweeps/{name}.py")
    return paths


def extend_confirmations(steps: int | None) -> list[str]:
    """The confirmation files ``best`` wrote (trained for ``steps`` env steps if given), and the
    ablation."""
    paths = []
    for name in STUDIES:
        path = OUT / "sweeps" / "best" / f"{name}_best.py"
        if steps is not None:
            why = "experiments/tmaze10.py --confirm-steps: longer than the sweep"
            path.write_text(with_overrides(path.read_text(), {"total_steps": steps}, why))
        paths.append(f"sweeps/best/{name}_best.py")
    study, flag, _ = ABLATION
    text = (OUT / "sweeps" / "best" / f"{study}_best.py").read_text()
    ablation = {flag: True, "study_name": f"{study}_best_{flag}"}
    path = OUT / "sweeps" / "best" / f"{study}_best_{flag}.py"
    path.write_text(with_overrides(text, ablation, f"experiments/tmaze10.py: ablation, {flag}"))
    return [*paths, f"sweeps/best/{path.name}"]


def rows() -> list[tuple[str, str, str]]:
    """``(sweep study, confirmation study, expectation)`` of every row of the table."""
    study, flag, expected = ABLATION
    return [(s, f"{s}_best", e) for s, e in STUDIES.items()] + [
        (study, f"{study}_best_{flag}", expected)
    ]


def write_table() -> None:
    """``results.md`` (one row per confirmation study) and ``results.csv`` (per seed)."""
    from sweepax.results.store import complete_stores, open_store

    lines, per_seed = [], []
    for sweep, confirmed, expected in rows():
        win = json.loads((OUT / "results" / sweep / "best_auc.json").read_text())
        env = win["envs"]["tmaze_10"]
        chosen = {k: env["hparams"][k] for k in win["hparams"]}
        (store,) = complete_stores(OUT / "results" / confirmed).values()
        ds = open_store(store)
        static, prov = ds.attrs["static"], ds.attrs["provenance"]
        final = ds["final_return"].values[0]
        length = (
            static["eval_steps"]
            * static["num_envs"]
            / np.maximum(ds["final_episodes"].values[0], 1)
        )
        auc = np.nanmean(ds["episode_return"].values[0], axis=-1)
        for seed, ret, steps, area in zip(ds["seed"].values, final, length, auc, strict=True):
            per_seed.append({
                "study": confirmed, "seed": int(seed), "final_return": round(float(ret), 4),
                "steps_per_episode": round(float(steps), 2), "auc": round(float(area), 4),
                "solved": bool(ret >= SOLVED), **chosen,
            })  # fmt: skip
        lines.append(
            f"| {confirmed} | {', '.join(f'{k} {v:g}' for k, v in chosen.items())} | "
            f"{env['score']:.3f} | {int((final >= SOLVED).sum())}/{len(final)} | "
            f"{np.mean(final):.3f} ({np.min(final):.2f}–{np.max(final):.2f}) | "
            f"{np.median(length):.1f} | {expected} | {prov['run_seconds']:.0f} s, "
            f"{prov['env_steps_per_second']} | {prov['git']['commit'][:10]} |"
        )
    with (OUT / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in per_seed for k in r)))
        writer.writeheader()
        writer.writerows(per_seed)
    head = (
        f"# T-Maze 10: each study's sweep winner confirmed on {CONFIRM_SEEDS} fresh seeds, "
        f"{static['total_steps']:,} env steps\n\n"
        "Written by `PYTHONPATH=src python experiments/tmaze10.py` (its docstring gives the "
        f"protocol), device {prov.get('device_kind', 'cpu')}. Sweep: each study's grid with "
        f"{SWEEP['n_seeds']} seeds x {SWEEP['total_steps']:,} env steps, winner by AUC "
        f"(`best --confirm`, `sweeps/best/`). Solved: final return >= {SOLVED} (evaluation "
        "rollout after training, 1000 steps x 4 envs, sampled actions). Scores with 95% CIs and "
        "the probability that each study beats each other: [compare_final.md](compare_final.md), "
        "curves: [compare_final_curves.png](compare_final_curves.png).\n\n"
        "| confirmation study | winner of the sweep | sweep AUC | solved | final return mean "
        "(min–max) | median steps/episode | expected | run time, env steps/s | commit |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    foot = (
        "\nFor comparison, POBAX 0.0.1 (normalised advantages, no episode time limit) with lr "
        "2.5e-3, lambda0 0.7, hidden 32, 4 envs, 1e6 steps solved tmaze_10 in 1 of 10 seeds on "
        "these machines.\n"
    )
    (OUT / "results.md").write_text(head + "\n".join(lines) + "\n" + foot)
    print((OUT / "results.md").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parallel", default="1", help="tasks at once (run_local --parallel)")
    p.add_argument("--confirm-steps", type=int, default=None, help="env steps of confirmations")
    args = p.parse_args()
    parallel = ("--parallel", args.parallel)
    sweep_dirs = [f"results/{name}" for name in STUDIES]
    sweeps = write_sweep_files()
    sweepax("sweep.write_jobs", *sweeps)
    sweepax("launch.local", *reversed(STUDIES), *parallel)  # the longest first
    sweepax("results.parse", *sweep_dirs, "--no-progress")
    sweepax("results.best", *sweep_dirs, "--confirm", "--seeds", str(CONFIRM_SEEDS), "--force")
    confirmations = extend_confirmations(args.confirm_steps)
    confirm_dirs = [f"results/{confirmed}" for _, confirmed, _ in rows()]
    sweepax("sweep.write_jobs", *confirmations)
    sweepax("launch.local", *(Path(c).stem for c in confirmations), *parallel)
    sweepax("results.parse", *confirm_dirs, "--no-progress")
    sweepax("results.best", *confirm_dirs, "--measure", "final")
    sweepax("results.compare", *confirm_dirs, "--out", ".", "--no-progress")
    write_table()


if __name__ == "__main__":
    main()
