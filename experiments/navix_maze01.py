"""The recorded Navix DMLab Maze 01 experiment: memoryless PPO, recurrent PPO and memoryless PPO
on the fully observable ``-F-`` maze, at POBAX's own ``best/`` settings, run with sweepax's own
commands.

The sweep files are POBAX 0.0.1's, verbatim (``navix_maze01/pobax_best/``, from its sdist):
``Navix-DMLab-Maze-01-v0`` (first-person 4x7 view) and ``Navix-DMLab-Maze-F-01-v0`` (the whole
maze), lr 2.5e-4 annealed, hidden 512, 256 envs x 128 steps, entropy 0.01, lambda0 0.9
(recurrent) or 0.95, POBAX's defaults for the rest. The expectation: fully observable >=
recurrent > memoryless. The experiment changes only the budget, written as overrides at the end
of each copy under ``navix_maze01/sweeps/``: ``n_seeds`` and ``seed`` (POBAX: 10 tasks of 3
vmapped seeds from 2126; here one task of ``--seeds`` seeds from 2126), ``total_steps`` (POBAX:
1e7) and ``platform`` (POBAX: gpu). Then ``write_jobs``, ``run_local``, ``parse``, ``compare``
and ``results.md`` / ``results.csv``.

A random walk reaches Maze 01's goal well inside its 1000-step limit, so every study's
undiscounted final return is about 1 from the first update on; the discounted return (gamma 0.99,
so 0.99^steps to the goal) is what orders them.

Cost here: one update (32,768 env steps, 4 epochs x 4 minibatches of 8,192, hidden 512) takes
about 50 s of one core memoryless and more recurrent (``results.md`` gives each study's env
steps/s); vmapped seeds share no work. POBAX's 1e7 steps x 30 seeds is a GPU budget;
``--steps 10000000 --seeds 30 --platform gpu`` is its protocol (one task of 30 seeds).

    PYTHONPATH=src python experiments/navix_maze01.py [--seeds N] [--steps N] [--parallel N]

Complete tasks are skipped on a re-run (``run_local``); interrupted ones resume from checkpoints.
"""

from __future__ import annotations

import argparse

from commands import ROOT, best_head, run_best, write_best_sweeps, write_results

OUT = ROOT / "experiments" / "navix_maze01"
STUDIES = {  # study -> what is expected of it (POBAX's figure could not be read: NOTE)
    "navix_01_ppo_memoryless_best": "lowest",
    "navix_01_ppo_best": "above memoryless",
    "navix_01_ppo_observable_best": "at least recurrent",
}
NOTE = (
    "POBAX's published values are in its README's figure (`images/all_envs.png`), which could "
    "not be read where this ran; its README and paper say only that every POBAX env is *memory "
    "improvable*: a large gap between a memoryless agent and one with more state information. "
    "The expectation here is fully observable >= recurrent > memoryless. A random walk reaches "
    "Maze 01's goal inside its 1000-step limit, so the undiscounted return is about 1 for every "
    "policy; the discounted return (0.99^steps to the goal) orders them."
)
SEEDS, STEPS, FIRST_SEED = 3, 98_304, 2126


def write_sweep_files(seeds: int, steps: int, platform: str) -> list[str]:
    """``sweeps/<study>.py``: POBAX's file with the experiment's budget."""
    budget = {"seed": FIRST_SEED, "n_seeds": seeds, "total_steps": steps, "platform": platform}
    why = "experiments/navix_maze01.py: the experiment's budget; every other value is POBAX's"
    return write_best_sweeps(OUT, STUDIES, budget, why)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=SEEDS, help="seeds per study (POBAX: 30)")
    p.add_argument("--steps", type=int, default=STEPS, help="env steps per run (POBAX: 1e7)")
    p.add_argument("--platform", default="cpu", help="cpu or gpu (POBAX: gpu)")
    p.add_argument("--parallel", default="1", help="tasks at once (run_local --parallel)")
    args = p.parse_args()
    sweeps = write_sweep_files(args.seeds, args.steps, args.platform)
    run_best(OUT, list(STUDIES), sweeps, args.parallel)
    title = "Navix DMLab Maze 01 at POBAX's best settings"
    write_results(OUT, STUDIES, best_head(title, "navix_maze01.py", NOTE, "expected"))


if __name__ == "__main__":
    main()
