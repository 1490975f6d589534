"""Env steps/s of POBAX's Craftax ids at 1 and 64 parallel envs, and one tiny task's timings.

Source: ``bench/navix_steps.py``'s ``bench_one`` (imported): jit a ``lax.scan`` of ``vmap(step)``
(random actions, the full step with POBAX's auto-reset), compile separately, one untimed warm-up
call, then the best of ``--repeats`` timed calls, blocking on the result. ``--task`` also runs
one tiny training task (``python -m sweepax.train ppo``, no compilation cache) and reports the
import, trace+compile and run seconds its store's provenance records.

    python bench/craftax_steps.py [--envs craftax_classic,craftax] [--worlds 1,64]
                                  [--steps 200] [--repeats 2] [--task craftax_classic]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
from navix_steps import bench_one

from sweepax.results.store import read_attrs


def tiny_task(env_id: str) -> dict[str, float]:
    """One tiny PPO task (4 envs x 32 steps, 1024 steps, 1 seed) in a fresh process."""
    env = {k: v for k, v in os.environ.items() if "COMPILATION_CACHE" not in k}
    env.pop("SWEEPAX_JAX_CACHE", None)
    with tempfile.TemporaryDirectory() as work:
        argv = [sys.executable, "-m", "sweepax.train", "ppo", "--study", "bench_craftax",
                "--results_dir", work, "--env", env_id, "--hidden_size", "32",
                "--num_envs", "4", "--num_steps", "32", "--total_steps", "1024",
                "--num_minibatches", "1", "--n_seeds", "1"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
        (store,) = (Path(work) / "bench_craftax").glob("*.zarr")
        prov = read_attrs(store)["provenance"]
    return {"import_s": prov["import_seconds"], "compile_s": prov["compile_seconds"],
            "run_s": prov["run_seconds"], "wall_s": wall}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="craftax_classic,craftax")
    parser.add_argument("--worlds", default="1,64", help="comma list of parallel env counts")
    parser.add_argument("--steps", type=int, default=200, help="env steps per timed call")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls (best reported)")
    parser.add_argument("--task", default="", help="env id of one tiny timed task ('' = none)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load {load:.1f}; {args.steps} steps per call, best of {args.repeats}")  # fmt: skip
    print(f"{'env':<24}{'envs':>6}{'compile s':>11}{'env steps/s':>14}")
    for env_id in filter(None, args.envs.split(",")):
        for worlds in (int(w) for w in args.worlds.split(",")):
            row = bench_one(env_id.strip(), worlds, args.steps, args.repeats)
            print(f"{env_id:<24}{worlds:>6}{row['compile_s']:>11.1f}"
                  f"{row['env_steps_per_s']:>14,.0f}", flush=True)  # fmt: skip
    if args.task:
        row = tiny_task(args.task)
        print(f"tiny task on {args.task}: import {row['import_s']:.1f} s, trace+compile "
              f"{row['compile_s']:.1f} s, run {row['run_s']:.1f} s, process wall "
              f"{row['wall_s']:.1f} s; load {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
