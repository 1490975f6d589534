"""GPU figures in one run: a whole study on one device, the largest grid that fits, MJX at scale.

1. **Study**: ``hyperparams/tmaze/tmaze_10_ppo.py`` (24 configs x 10 seeds x 1e6 env steps) copied
   into ``--out`` with ``--seeds`` / ``--steps`` as overrides, planned with ``write_jobs
   --max-vmap auto`` (the budget is the device's own memory) and run with ``run_local``, as a user
   runs it. Reports the wall time of ``run_local``, each task's env steps/s, compile and run
   seconds from its store's provenance, and its estimated device memory (manifest) against the
   peak the task measured (``device_peak_bytes`` in the provenance; absent on CPU).
2. **Largest grid**: for each ``--grids`` size, a fresh process vmaps that many configs (the study's
   lr x lambda0 values repeated) x ``--seeds`` and times ``--updates`` updates after a warm-up;
   sizes grow until one does not fit (out of device memory) or the list ends.
3. **MJX**: ``bench/mjx_steps.py`` for ``--models`` at ``--worlds`` worlds.

    nox -s bench_gpu -- [--seeds 10] [--steps 1000000] [--grids 240,480,960,1920,3840,7680]
                        [--updates 20] [--worlds 1024,4096] [--models Hopper] [--out DIR]

Untested on GPU. On a CPU, ``--seeds 2 --steps 20000 --grids 24,48 --updates 2 --worlds 4``
checks every step end to end in a few minutes; the figures then describe the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = "tmaze_10_ppo"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def run(argv: list[str], cwd: Path) -> float:
    """Wall seconds of ``python argv`` in ``cwd``; stop the bench if it fails."""
    print("$ python " + " ".join(argv), flush=True)
    start = time.perf_counter()
    if subprocess.run([sys.executable, *argv], cwd=cwd, env=env()).returncode:
        raise SystemExit(f"python {' '.join(argv)} failed")
    return time.perf_counter() - start


def study(out: Path, seeds: int, steps: int) -> list[dict]:
    """Plan (``--max-vmap auto``) and run the study; one row per task."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from commands import with_overrides

    folder = out / "hyperparams" / "tmaze"
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "hyperparams" / "tmaze" / f"{STUDY}.py").read_text()
    budget = {"n_seeds": seeds, "total_steps": steps}
    (folder / f"{STUDY}.py").write_text(with_overrides(text, budget, "bench/gpu_study.py"))
    run(["-m", "sweepax.sweep.write_jobs", f"hyperparams/tmaze/{STUDY}.py", "--max-vmap", "auto"],
        out)  # fmt: skip
    wall = run(["-m", "sweepax.launch.local", STUDY], out)
    manifest = json.loads((out / "runs" / f"{STUDY}.json").read_text())
    estimates = {t["task_id"]: t.get("memory_estimate_bytes") for t in manifest["tasks"]}
    from sweepax.results.store import complete_stores, open_store

    rows = []
    for task_id, path in complete_stores(out / "results" / STUDY).items():
        ds = open_store(path)
        prov = ds.attrs["provenance"]
        est, peak = estimates.get(task_id), prov.get("device_peak_bytes")
        rows.append({
            "task": task_id, "configs": ds.sizes["config"], "seeds": ds.sizes["seed"],
            "device": prov.get("device_kind"), "compile_s": prov.get("compile_seconds"),
            "run_s": prov.get("run_seconds"), "env_steps_per_s": prov["env_steps_per_second"],
            "estimate_MiB": None if est is None else round(est / 2**20, 1),
            "peak_MiB": None if peak is None else round(peak / 2**20, 1),
            "peak_over_estimate": None if not (est and peak) else round(peak / est, 3),
            "study_wall_s": round(wall, 1),
        })  # fmt: skip
    return rows


def one_grid(configs: int, seeds: int, updates: int) -> dict:
    """Env steps/s of ``configs x seeds`` runs of the study's shape vmapped in this process."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, str(ROOT / "bench"))
    from roofline import SHAPE, grid_map, sweep_of

    from sweepax.agents import ppo
    from sweepax.agents.config import PPOStatic
    from sweepax.provenance import device_memory

    sweep = sweep_of(configs)
    static = PPOStatic(**SHAPE, n_seeds=seeds, total_steps=128 * 4 * updates * 4)
    trainer = ppo.make_trainer(static)
    seed_ids = jnp.arange(seeds, dtype=jnp.int32)
    runner = grid_map(trainer.init, ((0, None), (None, 0)))(sweep, seed_ids)
    update = grid_map(trainer.update, ((0, 0), (0, None), None))
    idx = jnp.arange(updates, dtype=jnp.int32)
    start = time.perf_counter()
    runner, _ = jax.block_until_ready(update(runner, sweep, idx))  # compile + warm-up
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(update(runner, sweep, idx))
    seconds = time.perf_counter() - start
    steps = configs * seeds * updates * static.num_steps * static.num_envs
    peak = device_memory(jax.local_devices()[0]).get("device_peak_bytes")
    return {
        "configs": configs, "seeds": seeds, "device": jax.devices()[0].device_kind,
        "compile_and_first_s": round(compiled, 2), "run_s": round(seconds, 3),
        "env_steps_per_s": round(steps / seconds),
        "peak_MiB": None if peak is None else round(peak / 2**20, 1),
    }  # fmt: skip


def largest_grid(sizes: list[int], seeds: int, updates: int) -> list[dict]:
    """``one_grid`` for each size in a fresh process, until one fails (out of memory)."""
    rows = []
    for configs in sizes:
        argv = [__file__, "--one-grid", str(configs), "--seeds", str(seeds),
                "--updates", str(updates)]  # fmt: skip
        done = subprocess.run([sys.executable, *argv], env=env(), capture_output=True, text=True)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
            rows.append({"configs": configs, "seeds": seeds, "failed": tail[0][:200]})
            break
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows


def mjx(models: str, worlds: str, out: Path) -> list[dict]:
    path = out / "mjx.json"
    run([str(ROOT / "bench" / "mjx_steps.py"), "--models", models, "--worlds", worlds,
         "--json", str(path)], ROOT)  # fmt: skip
    return json.loads(path.read_text())["rows"]


def table(title: str, rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = [f"## {title}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=1_000_000, help="env steps per run (study)")
    p.add_argument("--grids", default="240,480,960,1920,3840,7680", help="configs per program")
    p.add_argument("--updates", type=int, default=20, help="timed updates per grid size")
    p.add_argument("--worlds", default="1024,4096")
    p.add_argument("--models", default="Hopper")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu")
    p.add_argument("--skip", default="", help="comma list of study,grid,mjx to leave out")
    p.add_argument("--one-grid", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_grid:
        print(json.dumps(one_grid(args.one_grid, args.seeds, args.updates)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    report = {}
    if "study" not in skip:
        report["study"] = study(args.out, args.seeds, args.steps)
    if "grid" not in skip:
        sizes = [int(n) for n in args.grids.split(",")]
        report["grid"] = largest_grid(sizes, args.seeds, args.updates)
    if "mjx" not in skip:
        report["mjx"] = mjx(args.models, args.worlds, args.out)
    (args.out / "gpu_study.json").write_text(json.dumps(report, indent=1))
    text = "".join(table(k, v) for k, v in report.items() if v)
    (args.out / "gpu_study.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
