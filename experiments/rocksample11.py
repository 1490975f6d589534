"""The recorded RockSample 11x11 experiment: memoryless PPO, recurrent PPO and lambda-discrepancy
at POBAX's own ``best/`` settings, run with sweepax's own commands.

The sweep files are POBAX 0.0.1's, verbatim (``rocksample11/pobax_best/``, from its sdist): lr,
lambda0/lambda1, ld_weight, hidden 256, 8 envs, entropy 0.2, POBAX's defaults for the rest
(``entry: -m pobax.algos.ppo``: annealed lr, normalised advantages, 10 evaluation envs). The
experiment changes only the budget, written as overrides at the end of each copy under
``rocksample11/sweeps/``: ``n_seeds`` (POBAX: 30), ``total_steps`` (POBAX: 5e6) and
``platform`` (POBAX: gpu). Then ``write_jobs``, ``run_local``, ``parse``, ``compare`` (final
return of the evaluation rollout after training, undiscounted and discounted: 95% intervals and
the probability that each beats each other) and ``results.md`` / ``results.csv``.

Cost here: one recurrent update (8 envs x 128 steps, 4 epochs x 4 minibatches, GRU 256) is about
16 GFLOP, 1.1 s on one core of this machine, so one seed of POBAX's 5e6 steps (4,882 updates)
takes about 90 CPU-minutes for each of the recurrent studies; vmapped seeds share no work (it is
compute, not overhead). The default budget (5 seeds x 2e5 steps, 195 updates) is what fitted in
about 90 minutes of background CPU on a machine shared with other work; ``--steps 5000000
--seeds 30 --platform gpu`` is POBAX's protocol.

    PYTHONPATH=src python experiments/rocksample11.py [--seeds N] [--steps N] [--parallel N]

Complete tasks are skipped on a re-run (``run_local``); interrupted ones resume from checkpoints.
"""

from __future__ import annotations

import argparse

from commands import ROOT, run_best, write_best_sweeps, write_results

OUT = ROOT / "experiments" / "rocksample11"
STUDIES = {  # study -> the lambda-discrepancy paper's undiscounted final return (5e6 steps)
    "rocksample_11_11_ppo_memoryless_best": "about 11",
    "rocksample_11_11_ppo_best": "about 19.5",
    "rocksample_11_11_ppo_LD_best": "about 25",
}
SEEDS, STEPS = 5, 200_000


def write_sweep_files(seeds: int, steps: int, platform: str) -> list[str]:
    """``sweeps/<study>.py``: POBAX's file with the experiment's budget."""
    budget = {"n_seeds": seeds, "total_steps": steps, "platform": platform}
    why = "experiments/rocksample11.py: the experiment's budget; every other value is POBAX's"
    return write_best_sweeps(OUT, STUDIES, budget, why)


def head(static: dict, prov: dict) -> str:
    """The text above ``results.md``'s table."""
    return (
        f"# RockSample 11x11 at POBAX's best settings, {static['total_steps']:,} env steps\n\n"
        "Written by `PYTHONPATH=src python experiments/rocksample11.py` (its docstring gives the "
        f"protocol), device {prov.get('device_kind', 'cpu')}. Final return: the evaluation "
        f"rollout after training ({static['eval_steps']} steps x {static['num_eval_envs']} "
        "envs, sampled actions), mean over seeds [95% t interval]. The probability that each "
        "study beats each other: [compare_final.md](compare_final.md) and "
        "[compare_final_discounted.md](compare_final_discounted.md); learning curves: "
        "[compare_final_curves.png](compare_final_curves.png).\n\n"
        "| study | seeds | final return | final discounted return | paper at 5e6 steps | "
        "run time, env steps/s | commit |\n|---|---|---|---|---|---|---|\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=SEEDS, help="seeds per study (POBAX: 30)")
    p.add_argument("--steps", type=int, default=STEPS, help="env steps per run (POBAX: 5e6)")
    p.add_argument("--platform", default="cpu", help="cpu or gpu (POBAX: gpu)")
    p.add_argument("--parallel", default="2", help="tasks at once (run_local --parallel)")
    args = p.parse_args()
    sweeps = write_sweep_files(args.seeds, args.steps, args.platform)
    longest_first = list(reversed(STUDIES))
    run_best(OUT, list(STUDIES), sweeps, args.parallel, launch=longest_first)
    write_results(OUT, STUDIES, head)


if __name__ == "__main__":
    main()
