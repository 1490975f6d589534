"""Env steps per second of the ``tmaze_10_ppo`` shape, each program in a fresh process.

Runs the real training program (``python -m sweepax.train ppo``) for each shape and variant,
reads its own timings back from the result store's provenance (import, trace+compile and run
seconds, the run blocked on the result), and measures the process's peak RSS. Prints one line per
run and the ratios: vmapped 24x10 vs 1x1 throughput, and ours vs POBAX 0.0.1's figures as
recorded on this 2-core CPU machine kind (POBAX is not re-run here; issue #3 adds that).

    nox -s bench -- [--total-steps 25600] [--shapes 24x10,1x1] [--variants recurrent,memoryless]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sweepax.results.store import read_attrs

# POBAX 0.0.1 on this machine kind, env steps/s (run_s only), from its anchor measurements.
POBAX = {
    ("recurrent", "24x10"): 21_500,
    ("recurrent", "1x1"): 16_000,
    ("memoryless", "24x10"): 128_000,
}
LRS = [2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6]
LAMBDAS = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95]


def run_one(variant: str, shape: str, total_steps: int, workdir: Path) -> dict:
    """One training program; its timings from the store plus peak RSS from wait4."""
    configs, seeds = map(int, shape.split("x"))
    grid = [(lr, lam) for lr in LRS for lam in LAMBDAS][:configs]
    argv = [sys.executable, "-m", "sweepax.train", "ppo", "--study", f"{variant}_{shape}",
            "--env", "tmaze_10", "--action_concat", "--hidden_size", "32", "--num_envs", "4",
            "--total_steps", str(total_steps), "--seed", "2024", "--n_seeds", str(seeds),
            "--grid", "zip", "--lr", *[str(g[0]) for g in grid],
            "--lambda0", *[str(g[1]) for g in grid]]  # fmt: skip
    if variant == "memoryless":
        argv.append("--memoryless")
    log = workdir / f"{variant}_{shape}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        _, status, rusage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"bench run failed: {' '.join(argv)}\n{log.read_text()[-2000:]}")
    (store,) = (workdir / "results" / f"{variant}_{shape}").glob("*.zarr")
    prov = read_attrs(store)["provenance"]
    return {
        "variant": variant,
        "shape": shape,
        "total_steps": total_steps,
        "steps_per_s": prov["env_steps_per_second"],
        "import_s": prov["import_seconds"],
        "compile_s": prov["compile_seconds"],
        "run_s": prov["run_seconds"],
        "peak_rss_mb": round(rusage.ru_maxrss / 1024),
    }


def main() -> None:
    """Run the shapes, print a line each and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--total-steps", type=int, default=25_600, help="steps per run (512 = 1 update)"
    )
    parser.add_argument("--shapes", default="24x10,1x1", help="configs x seeds, comma-separated")
    parser.add_argument("--variants", default="recurrent,memoryless")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            for shape in args.shapes.split(","):
                row = run_one(variant, shape, args.total_steps, Path(tmp))
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    by = {(r["variant"], r["shape"]): r for r in rows}
    print("ratios:")
    for variant in args.variants.split(","):
        if (variant, "24x10") in by and (variant, "1x1") in by:
            ratio = by[variant, "24x10"]["steps_per_s"] / by[variant, "1x1"]["steps_per_s"]
            print(f"  {variant}: vmapped 24x10 / 1x1 throughput = {ratio:.2f}x")
    for key, theirs in POBAX.items():
        if key in by:
            print(
                f"  {key[0]} {key[1]}: ours / POBAX (recorded {theirs} steps/s) = "
                f"{by[key]['steps_per_s'] / theirs:.2f}x"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
