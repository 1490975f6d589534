"""Env steps/s and fixed cost of the ``tmaze_10_ppo`` shape, ours vs POBAX 0.0.1, in one run.

Each program runs in a fresh process, ours (``python -m sweepax.train {ppo,transformer}``) and
POBAX's (``pobax==0.0.1`` from PyPI, in its own venv ``build/pobax-venv`` that this script creates
from ``bench/pobax/requirements.txt`` and reuses while the pins are unchanged; driver
``bench/pobax/run_pobax.py``). Same shape on both sides: tmaze_10, action concat, hidden 32,
4 envs, the lr x lambda0 grid of ``tmaze_10_ppo`` (24 configs; 1x1 = its first config), the same
total steps. Variants: recurrent (GRU), memoryless, transformer (GTrXL; POBAX's
``pobax.algos.transformer_xl`` does not run on T-Maze in 0.0.1, so its rows say n/a).

Per program: import s, trace+compile s, run s (blocked on the result), env steps/s (training steps
/ run s), peak RSS (wait4), and the fixed cost = process wall time - run s (imports, provenance,
trace, compile, result write). A second task of a shape (other seeds: another task id, the same
program) measures the fixed cost of a study's 2nd and later tasks: ours share a fresh
``SWEEPAX_JAX_CACHE`` directory (JAX's persistent compilation cache and sweepax's program cache)
with the 1st task; POBAX ships no persistent cache, so its 2nd process pays again. Ratios:
ours / POBAX throughput (target >= 3) and ours / POBAX 2nd-task fixed cost (target <= 0.2).

    nox -s bench -- [--variants recurrent,memoryless,transformer] [--shapes 24x10,1x1]
                    [--steps 24x10=5120,1x1=102400,memoryless:1x1=256000,...] [--total-steps N]
                    [--second 1x1] [--no-pobax | --pobax-only]
                    [--json out.json]

POBAX is always measured live in the same run, never taken from recorded figures: the machine's
load changes both sides alike, so only interleaved ratios compare.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweepax.results.store import read_attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "pobax"))
import pobax_venv  # noqa: E402  (bench/pobax/pobax_venv.py)

LRS = [2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6]
LAMBDAS = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
VARIANTS = ("recurrent", "memoryless", "transformer")
# The transformer of hyperparams/tmaze/tmaze_10_transformer.py; POBAX's names on the right.
TRANSFORMER = {"embed_size": 12, "num_heads": 4, "num_layers": 2, "memory_window": 32}
POBAX_TRANSFORMER = {"embed_size": 12, "qkv_features": 12, "num_heads": 4, "num_layers": 2,
                     "window_mem": 32, "window_grad": 64}  # fmt: skip
SEED, SECOND_SEED = 2024, 3024
# ~5 min idle on 2 cores; 1x1 runs are long enough (>= 1 s) for the run time to mean something
DEFAULT_STEPS = (
    "24x10=5120,1x1=102400,memoryless:1x1=256000,transformer:24x10=2560,transformer:1x1=25600"
)
# Variants POBAX 0.0.1 cannot run on tmaze_10 (checked with bench/pobax/run_pobax.py).
POBAX_NA = {"transformer": "n/a (pobax 0.0.1 transformer_xl fails on T-Maze, see run_pobax.py)"}


def grid(configs: int) -> tuple[list[float], list[float]]:
    """lr and lambda0 lists whose product has ``configs`` entries (a corner of the 4 x 6 grid)."""
    for n_lam in range(min(configs, len(LAMBDAS)), 0, -1):
        if configs % n_lam == 0 and configs // n_lam <= len(LRS):
            return LRS[: configs // n_lam], LAMBDAS[:n_lam]
    raise SystemExit(f"{configs} configs is not a corner of the {len(LRS)}x{len(LAMBDAS)} grid")


def run_process(argv: list[str], env: dict, cwd: Path, log: Path) -> tuple[float, int, str]:
    """Run, return (wall s, peak RSS MB, output); exit with the log's tail on failure."""
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    text = log.read_text()
    if status != 0:
        raise SystemExit(f"bench run failed: {' '.join(argv)}\n{text[-3000:]}")
    return wall, round(rusage.ru_maxrss / 1024), text


def clean_env() -> dict:
    """This environment minus anything that would switch a JAX persistent cache on by itself."""
    env = dict(os.environ)
    for key in ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE", "SWEEPAX_JAX_CACHE"):
        env.pop(key, None)
    return env


def run_ours(variant: str, shape: str, steps: int, seed: int, work: Path, cache: Path) -> dict:
    """One of our training programs; its timings from the store's provenance."""
    configs, seeds = map(int, shape.split("x"))
    lrs, lams = grid(configs)
    study = f"ours_{variant}_{shape}_{seed}"
    entry = "transformer" if variant == "transformer" else "ppo"
    argv = [sys.executable, "-m", "sweepax.train", entry, "--study", study,
            "--results_dir", str(work / "results"), "--env", "tmaze_10", "--action_concat",
            "--hidden_size", "32", "--num_envs", "4", "--total_steps", str(steps),
            "--seed", str(seed), "--n_seeds", str(seeds), "--grid", "product",
            "--lr", *map(str, lrs), "--lambda0", *map(str, lams)]  # fmt: skip
    if variant == "memoryless":
        argv.append("--memoryless")
    if variant == "transformer":
        for key, value in TRANSFORMER.items():
            argv += [f"--{key}", str(value)]
        argv += ["--eval_steps", "1"]  # POBAX's transformer has no final evaluation rollout
    env = clean_env()
    env["SWEEPAX_JAX_CACHE"] = str(cache)
    wall, rss, _ = run_process(argv, env, work, work / f"{study}.log")
    (store,) = (work / "results" / study).glob("*.zarr")
    prov = read_attrs(store)["provenance"]
    return {"import_s": prov["import_seconds"], "compile_s": prov["compile_seconds"],
            "run_s": prov["run_seconds"], "steps_per_s": prov["env_steps_per_second"],
            "wall_s": round(wall, 2), "fixed_s": round(wall - prov["run_seconds"], 2),
            "peak_rss_mb": rss}  # fmt: skip


def run_pobax(python: str, variant: str, shape: str, steps: int, seed: int, work: Path) -> dict:
    """One POBAX 0.0.1 program through bench/pobax/run_pobax.py in the POBAX venv."""
    configs, seeds = map(int, shape.split("x"))
    lrs, lams = grid(configs)
    algo = "transformer" if variant == "transformer" else "ppo"
    name = f"pobax_{variant}_{shape}_{seed}"
    argv = [python, str(HERE / "pobax" / "run_pobax.py"), algo,
            "--results_dir", str(work / "pobax_results" / name),
            "--env", "tmaze_10", "--action_concat", "--lr", *map(str, lrs),
            "--lambda0", *map(str, lams), "--lambda1", "0.95", "--alpha", "1", "--ld_weight", "0",
            "--hidden_size", "32", "--num_envs", "4", "--entropy_coeff", "0.01",
            "--steps_log_freq", "4", "--update_log_freq", "5", "--total_steps", str(steps),
            "--seed", str(seed), "--n_seeds", str(seeds), "--platform", "cpu",
            "--study_name", name]  # fmt: skip
    if variant == "memoryless":
        argv.append("--memoryless")
    if variant == "transformer":
        for key, value in POBAX_TRANSFORMER.items():
            argv += [f"--{key}", str(value)]
    wall, rss, text = run_process(argv, clean_env(), work, work / f"{name}.log")
    res = json.loads([ln for ln in text.splitlines() if ln.startswith("{")][-1])
    return {"import_s": res["import_s"], "compile_s": res["compile_s"], "run_s": res["run_s"],
            "steps_per_s": res["steps_per_s"], "wall_s": round(wall, 2),
            "fixed_s": round(wall - res["run_s"], 2), "peak_rss_mb": rss}  # fmt: skip


def parse_steps(text: str, override: int | None) -> dict[str, int]:
    """'24x10=5120,transformer:24x10=2560' -> {shape or variant:shape: steps}; --total-steps
    overrides all."""
    steps = {}
    for item in filter(None, text.split(",")):
        shape, value = item.split("=")
        steps[shape] = int(value)
    return {s: override for s in steps} if override else steps


COLUMNS = [("import_s", "import s", "{:.1f}"), ("compile_s", "trace+compile s", "{:.1f}"),
           ("run_s", "run s", "{:.1f}"), ("steps_per_s", "env steps/s", "{:,.0f}"),
           ("fixed_s", "fixed s", "{:.1f}"), ("wall_s", "wall s", "{:.1f}"),
           ("peak_rss_mb", "peak RSS MB", "{:.0f}")]  # fmt: skip


def print_table(rows: list[dict]) -> None:
    """One line per program: variant, shape, side, task, then the COLUMNS."""
    head = f"{'variant':<12}{'shape':<7}{'steps':>7}  {'side':<6}{'task':<5}"
    print(head + "".join(f"{title:>16}" for _, title, _ in COLUMNS))
    for r in rows:
        line = (
            f"{r['variant']:<12}{r['shape']:<7}{r['total_steps']:>7}  {r['side']:<6}{r['task']:<5}"
        )
        if r.get("na"):
            print(line + f"{r['na']:>16}")
            continue
        print(line + "".join(f"{fmt.format(r[key]):>16}" for key, _, fmt in COLUMNS))


def ratios(rows: list[dict], variants: list[str], shapes: list[str]) -> list[dict]:
    """ours / POBAX throughput (1st tasks) and ours / POBAX fixed cost of the 2nd task."""
    by = {(r["variant"], r["shape"], r["side"], r["task"]): r for r in rows if not r.get("na")}
    out = []
    for v, s in itertools.product(variants, shapes):
        ours, theirs = by.get((v, s, "ours", "1st")), by.get((v, s, "pobax", "1st"))
        if ours and theirs:
            ratio = ours["steps_per_s"] / theirs["steps_per_s"]
            out.append({"variant": v, "shape": s, "what": "throughput ours/pobax",
                        "ratio": ratio, "target": ">= 3"})  # fmt: skip
        ours2, theirs2 = by.get((v, s, "ours", "2nd")), by.get((v, s, "pobax", "2nd"))
        if ours2 and theirs2:
            ratio = ours2["fixed_s"] / theirs2["fixed_s"]
            out.append({"variant": v, "shape": s, "what": "2nd-task fixed cost ours/pobax",
                        "ratio": ratio, "target": "<= 0.2"})  # fmt: skip
    for v in variants:
        for side in ("ours", "pobax"):
            big, one = by.get((v, "24x10", side, "1st")), by.get((v, "1x1", side, "1st"))
            if big and one:
                ratio = big["steps_per_s"] / one["steps_per_s"]
                out.append({"variant": v, "shape": "24x10/1x1", "what": f"{side} vmapped/1x1",
                            "ratio": ratio, "target": ""})  # fmt: skip
    return out


def main() -> None:
    """Set up POBAX's venv, run every (variant, shape, side, task), print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--shapes", default="24x10,1x1", help="configs x seeds, comma-separated")
    parser.add_argument(
        "--steps", default=DEFAULT_STEPS, help="total steps per shape (512 = 1 update)"
    )
    parser.add_argument(
        "--total-steps", type=int, default=None, help="the same steps for all shapes"
    )
    parser.add_argument(
        "--second", default="1x1", help="shapes that also run a 2nd task (fixed cost); '' for none"
    )
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--no-pobax", action="store_true", help="ours only")
    side.add_argument("--pobax-only", action="store_true", help="POBAX only")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    variants, shapes = args.variants.split(","), args.shapes.split(",")
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}: {', '.join(VARIANTS)}")
    steps = parse_steps(args.steps, args.total_steps)
    for s in shapes:  # a shape without its own entry: 25,600 steps
        steps.setdefault(s, args.total_steps or 25_600)
    second = set(filter(None, args.second.split(",")))
    sides = ["pobax"] if args.pobax_only else ["ours"] if args.no_pobax else ["ours", "pobax"]

    meta = {"loadavg_start": os.getloadavg(), "cpus": os.cpu_count(), "steps": steps}
    pobax = None
    if "pobax" in sides:
        pobax = pobax_venv.ensure(log=lambda m: print(m, flush=True))
        print(f"POBAX venv: {pobax['python']} ({pobax['how']}, install {pobax['install_s']} s)")
        meta["pobax_venv"] = pobax
    rows = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sweepax-bench-") as tmp:
        work = Path(tmp)
        for v, s in itertools.product(variants, shapes):
            cache = work / f"jax-cache-{v}-{s}"  # fresh per shape, shared by its 1st and 2nd task
            tasks = [("1st", SEED)] + ([("2nd", SECOND_SEED)] if s in second else [])
            for (task, seed), who in itertools.product(tasks, sides):
                n = steps.get(f"{v}:{s}", steps[s])
                row = {"variant": v, "shape": s, "total_steps": n, "side": who, "task": task}
                if who == "pobax" and v in POBAX_NA:
                    row["na"] = POBAX_NA[v]
                elif who == "ours":
                    row.update(run_ours(v, s, n, seed, work, cache))
                else:
                    row.update(run_pobax(pobax["python"], v, s, n, seed, work))
                rows.append(row)
                print(" ".join(f"{k}={val}" for k, val in row.items()), flush=True)
    meta["loadavg_end"] = os.getloadavg()
    meta["bench_s"] = round(time.perf_counter() - t_start, 1)

    print(f"\nload average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}, "
          f"{meta['cpus']} CPUs, {meta['bench_s']} s")  # fmt: skip
    print_table(rows)
    rat = ratios(rows, variants, shapes)
    print("ratios (measured in this run):")
    for r in rat:
        target = f"  (target {r['target']})" if r["target"] else ""
        print(f"  {r['variant']:<12}{r['shape']:<10}{r['what']:<32}{r['ratio']:6.2f}x{target}")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows, "ratios": rat}, indent=1))


if __name__ == "__main__":
    main()
