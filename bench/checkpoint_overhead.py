"""Checkpoint overhead and size on the ``tmaze_10_ppo`` shape (24 configs x 10 seeds, tmaze_10,
hidden 32, 4 envs), ``python -m sweepax.train`` in fresh processes sharing one compilation cache.

Modes, interleaved ``--repeats`` times: ``off`` (``--checkpoint_every 1e9``: no save), ``default``
(the default interval, ``$SWEEPAX_CHECKPOINT_EVERY`` unset: 300 s) and ``every-chunk``
(``--checkpoint_every 0``: a save after each of the task's 20 chunks, ``--keep-checkpoints`` so
the size of one checkpoint can be read). Per mode: the run seconds from the store's provenance
(the updates, saves included), saves and their seconds, and the overhead against ``off``.

    nox -s bench_checkpoint -- [--total-steps 32768] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sweepax.results.store import read_attrs

LRS = ["2.5e-3", "2.5e-4", "2.5e-5", "2.5e-6"]
LAMBDAS = ["0.1", "0.3", "0.5", "0.7", "0.9", "0.95"]
MODES = {
    "off": ["--checkpoint_every", "1e9"],
    "default": [],
    "every-chunk": ["--checkpoint_every", "0", "--keep-checkpoints"],
}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(mode: str, steps: int, work: Path, cache: Path, n: int) -> dict:
    """One task of the shape in ``mode``: run seconds, saves, save seconds, checkpoint bytes."""
    study = f"ckpt_{mode.replace('-', '_')}_{n}"
    argv = [sys.executable, "-m", "sweepax.train", "ppo", "--study", study,
            "--results_dir", str(work / "results"), "--env", "tmaze_10", "--action_concat",
            "--hidden_size", "32", "--num_envs", "4", "--total_steps", str(steps),
            "--seed", "2024", "--n_seeds", "10", "--grid", "product",
            "--lr", *LRS, "--lambda0", *LAMBDAS, *MODES[mode]]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "SWEEPAX_CHECKPOINT_EVERY"}
    env["SWEEPAX_JAX_CACHE"] = str(cache)
    proc = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    study_dir = work / "results" / study
    (store,) = study_dir.glob("*.zarr")
    prov = read_attrs(store)["provenance"]
    saved = sorted((study_dir / ".checkpoints").glob("*/update-*"))
    return {
        "run_s": prov["run_seconds"],
        "saves": prov["checkpoints"]["saves"],
        "save_s": prov["checkpoints"]["save_seconds"],
        "checkpoint_bytes": folder_bytes(saved[-1]) if saved else None,
        "store_bytes": folder_bytes(store),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=32768)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweepax-ckpt-bench-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "jax-cache"
        run("off", args.total_steps, work, cache, -1)  # warm the compilation cache
        rows: dict[str, list[dict]] = {m: [] for m in MODES}
        for n in range(args.repeats):
            for mode in MODES:
                rows[mode].append(run(mode, args.total_steps, work, cache, n))
    base = statistics.median(r["run_s"] for r in rows["off"])
    print(f"tmaze_10_ppo shape, 24 configs x 10 seeds, {args.total_steps} env steps per run, "
          f"median of {args.repeats}")  # fmt: skip
    print("| mode | run s | saves | save s | overhead vs off | one checkpoint | store |")
    print("|---|---|---|---|---|---|---|")
    for mode, rs in rows.items():
        run_s = statistics.median(r["run_s"] for r in rs)
        size = rs[-1]["checkpoint_bytes"]
        print(
            f"| {mode} | {run_s:.1f} | {rs[-1]['saves']} | {rs[-1]['save_s']:.2f} | "
            f"{100 * (run_s / base - 1):+.1f}% | "
            f"{'-' if size is None else f'{size / 2**20:.1f} MiB'} | "
            f"{rs[-1]['store_bytes'] / 2**20:.2f} MiB |"
        )


if __name__ == "__main__":
    main()
