"""Scale of ``parse`` and ``best``: studies of 1,000 / 3,000 / 10,000 synthetic task stores.

Each study is planned from a sweep file like any other (a job array of ``hidden_size`` x
``gamma``, ``lambda0`` vmapped, 3 seeds), and every task gets a real store, sealed as training
seals it: ``train.write_store`` with ``train.store_attrs`` for a few template tasks (synthetic
learning curves), and for every other task a copy of a template with the task's own attributes
and the root checksum recomputed (``store.root_digest``). The copy is exact because a store's
files other than the root ``zarr.json`` hold only its arrays, which are the same for tasks of one
shape; the bench checks a copy against a store written directly for the same task. One task gets
a clearly better template, so ``best`` has a known winner to find.

Then, each in a fresh process (from the study's root, so ``runs/<study>.json`` is read):
``python -m sweepax.results.parse results/<study>`` and ``python -m sweepax.results.best`` on
the study (every store checked against its checksums first, as a user runs it) and on its
parsed tensor alone (``scores.zarr`` without the stores, as after ``sync`` without ``--raw``).
Each reports its wall time and peak RSS (``ru_maxrss``) above the RSS after its imports; for
parse the peak less the output tensor's bytes shows what grows with the number of stores.

    .venv/bin/python bench/scale_results.py [--tasks 1000,3000,10000] [--updates 100]
        [--workers 2] [--out bench/out/scale] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PER_ARRAY_ROW = 100  # gamma values: tasks = hidden sizes x 100
N_TEMPLATES = 16
SEEDS = 3
LAMBDAS = (0.5, 0.9)
STEPS_PER_UPDATE = 32 * 4  # num_steps x num_envs
MIB = 2**20


# --- building a study -----------------------------------------------------------------------------
def sweep_text(n_tasks: int, updates: int) -> str:
    """A sweep file of ``n_tasks`` job-array rows (hidden sizes x 100 gammas)."""
    if n_tasks % PER_ARRAY_ROW:
        raise SystemExit(f"--tasks: {n_tasks} is not a multiple of {PER_ARRAY_ROW}")
    sizes = [8 + i for i in range(n_tasks // PER_ARRAY_ROW)]
    gammas = [round(0.9 + 0.001 * j, 3) for j in range(PER_ARRAY_ROW)]
    return (
        f'"""bench/scale_results.py: {n_tasks} tasks."""\n\nfrom sweepax import vmap\n\n'
        "hparams = {\n"
        '    "entry": "-m sweepax.train ppo",\n'
        '    "args": [{\n'
        f'        "env": "tmaze_10", "hidden_size": {sizes}, "gamma": {gammas},\n'
        f'        "lambda0": vmap({list(LAMBDAS)}), "num_envs": 4, "num_steps": 32,\n'
        f'        "total_steps": {updates * STEPS_PER_UPDATE}, "seed": 0, "n_seeds": {SEEDS},\n'
        "    }],\n"
        "}\n"
    )


def metrics(level: float, updates: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every ``TrainMetrics`` field for (config, seed, update): a noisy learning curve rising to
    ``level`` (no episode ends in the first update), losses, and the final evaluation."""
    shape = (len(LAMBDAS), SEEDS, updates)
    t = np.arange(updates) / updates
    ret = level * (1 - np.exp(-5 * t)) + rng.normal(0, 0.2, shape)
    ret[..., 0] = np.nan
    out = {
        "episode_return": ret,
        "discounted_return": 0.9 * ret,
        "episodes": rng.integers(1, 20, shape).astype(np.int32),
        **{k: rng.normal(0, 1, shape) for k in ("loss_total", "loss_value", "loss_policy")},
        "entropy": rng.uniform(0, 1, shape),
        "approx_kl": rng.uniform(0, 0.01, shape),
        "final_return": ret[..., -1],
        "final_discounted_return": 0.9 * ret[..., -1],
        "final_episodes": rng.integers(1, 100, shape[:2]).astype(np.int32),
    }
    return {k: v if v.dtype == np.int32 else v.astype(np.float32) for k, v in out.items()}


def parse_planned(argv: list[str], results: Path):
    """The training program's ``Task`` for a planned line (``-m sweepax.train <entry> ...``)."""
    from sweepax import train

    return train.parse_task([*argv[2:], "--results_dir", str(results)])


def copy_store(template: Path, task, attrs: dict) -> Path:
    """``template``'s store as ``task``'s: its files, ``attrs`` (``train.store_attrs``) as the
    root attributes with the template's completion record, a new ``completed_at`` and the root
    checksum recomputed; written under a hidden name and renamed, as a task writes it."""
    from sweepax import files
    from sweepax.results import store
    from sweepax.results.values import jsonable

    with files.building(task.study_dir / f"{task.task_id}{store.STORE_SUFFIX}") as tmp:
        shutil.copytree(template, tmp)
        root = tmp / store.ROOT_META
        doc = json.loads(root.read_bytes())
        record = {k: doc["attributes"][k] for k in ("arrays", "files", "complete")}
        doc["attributes"] = {
            **jsonable(attrs),
            "task_id": task.task_id,
            "hparams_vmapped": list(task.vmapped()),
            **record,
            "completed_at": files.utc_now("microseconds"),
        }
        doc["attributes"][store.ROOT_DIGEST] = store.root_digest(doc)
        root.write_text(json.dumps(doc, indent=2))
        return files.publish(tmp, task.study_dir / f"{task.task_id}{store.STORE_SUFFIX}")


def _copy_many(job: tuple[list[list[str]], list[Path], Path, dict]) -> int:
    """A worker's share: each planned line's store, a copy of its template."""
    from sweepax import train

    lines, templates, results, prov = job
    for argv, template in zip(lines, templates, strict=True):
        task = parse_planned(argv, results)
        copy_store(template, task, train.store_attrs(task, prov))
    return len(lines)


def build_study(root: Path, n_tasks: int, updates: int, workers: int) -> dict:
    """Plan the study under ``root`` and write a store for every task; what it took."""
    from sweepax import provenance, train
    from sweepax.sweep import load, plan

    t0 = time.perf_counter()
    spec = root / f"scale_{n_tasks}.py"
    spec.write_text(sweep_text(n_tasks, updates))
    p = plan.plan(load.load(spec))
    plan.write(p, root / "runs")
    results = root / "results"
    lines = [t.argv for t in p.tasks]
    prov = provenance.collect(lines[0][2:], spec=str(spec))
    rng = np.random.default_rng(n_tasks)
    planted = len(lines) - 1  # its curves rise to 5, every other task's to 3-4
    written = [*range(N_TEMPLATES), planted]
    templates = {}
    for i in written:
        task = parse_planned(lines[i], results)
        level = 5.0 if i == planted else 3.0 + i / N_TEMPLATES
        templates[i] = train.write_store(
            task, metrics(level, updates, rng), train.store_attrs(task, prov)
        )
    rest = list(range(N_TEMPLATES, planted))
    chosen = [templates[i % N_TEMPLATES] for i in rest]
    jobs = [
        ([lines[i] for i in rest[w::workers]], chosen[w::workers], results, prov)
        for w in range(workers)
    ]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        copied = sum(pool.map(_copy_many, jobs))
    if rest:
        check_copy(root, lines[rest[0]], prov, updates)
    planted_task = parse_planned(lines[planted], results)
    return {
        "study_dir": results / p.study.name,
        "stores": copied + len(written),
        "build_seconds": time.perf_counter() - t0,
        "planted": {
            "hidden_size": planted_task.static["hidden_size"],
            "gamma": planted_task.static["gamma"],
        },  # fmt: skip
    }


def check_copy(root: Path, argv: list[str], prov: dict, updates: int) -> None:
    """The copied store of a task equals the store ``train.write_store`` writes for it (same
    files, same attribute names) and passes the full completion check."""
    from sweepax import train
    from sweepax.results import store

    task = parse_planned(argv, root / "results")
    copied = task.study_dir / f"{task.task_id}{store.STORE_SUFFIX}"
    direct_task = parse_planned(argv, root / "check")
    attrs = train.store_attrs(direct_task, prov)
    direct = train.write_store(direct_task, metrics(0.0, updates, np.random.default_rng(0)), attrs)
    state = store.store_state(copied, full=True)
    if not state.verified:
        raise SystemExit(f"bench: copied store {copied} fails its check: {state.reason}")
    copied_attrs, direct_attrs = store.read_attrs(copied), store.read_attrs(direct)
    if set(copied_attrs["files"]) != set(direct_attrs["files"]):
        raise SystemExit(f"bench: {copied} has other files than {direct}")
    if set(copied_attrs) != set(direct_attrs):
        raise SystemExit(f"bench: {copied} attributes differ from {direct}'s")
    shutil.rmtree(root / "check")


# --- measuring ------------------------------------------------------------------------------------
def memory_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last ``reset_peak``) of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"bench: no {field} in /proc/self/status (Linux only)")


def reset_peak() -> None:
    """Start ``VmHWM`` again from the current RSS (``/proc/self/clear_refs``, Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(command: str, study_dir: str) -> None:
    """In this process: run ``parse`` or ``best`` on ``study_dir`` as its CLI does and print
    ``{"seconds", "cpu_seconds", "baseline_mib", "peak_mib", ...}`` as the last line: the peak
    is this process's while the command ran, the baseline its RSS after the imports."""
    import matplotlib.pyplot  # noqa: F401  (best plots; imported before measuring, like xarray)

    from sweepax.results import best, parse

    cli = {"parse": parse.main, "best": best.main}[command]
    reset_peak()
    baseline = memory_mib("VmRSS")
    t0, c0 = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli([study_dir, "--no-progress"])
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    out = {"seconds": seconds, "cpu_seconds": cpu, "baseline_mib": baseline,
           "peak_mib": memory_mib("VmHWM"), "code": code}  # fmt: skip
    if command == "parse":
        scores = best.open_scores(Path(study_dir))
        out["tensor_mib"] = sum(v.nbytes for v in scores.variables.values()) / MIB
    else:
        record = json.loads((Path(study_dir) / "best_auc.json").read_text())
        out["winner"] = next(iter(record["envs"].values()))["hparams"]
    print(json.dumps(out))


def run_measure(command: str, root: Path, study_dir: Path) -> dict:
    """``measure`` in a fresh process, from ``root``."""
    study = study_dir.resolve().relative_to(root.resolve())  # root may link to a kept study
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", command, str(study)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    if proc.returncode:
        raise SystemExit(f"bench: {command} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tensor_only(study_dir: Path) -> Path:
    """A folder holding only the study's ``scores.zarr`` (results synced without ``--raw``)."""
    alone = study_dir.parent.parent / "tensor_only" / study_dir.name
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir(parents=True)
    shutil.copytree(study_dir / "scores.zarr", alone / "scores.zarr")
    return alone


def bench_size(
    out: Path, n_tasks: int, updates: int, workers: int, keep: bool, reuse: bool
) -> dict:
    """Build one study (or reuse one kept before), then parse it, best on it, best on its
    tensor alone."""
    root = out / f"tasks_{n_tasks}"
    record = root / "built.json"
    if reuse and record.is_file():
        built = json.loads(record.read_text())
    else:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        built = build_study(root, n_tasks, updates, workers)
        built["study_dir"] = str(built["study_dir"])
        record.write_text(json.dumps(built))
    study_dir = Path(built["study_dir"])
    parsed = run_measure("parse", root, study_dir)
    ranked = run_measure("best", root, study_dir)
    alone = run_measure("best", root, tensor_only(study_dir))
    for run in (ranked, alone):
        chosen = {k: run["winner"][k] for k in built["planted"]}
        if chosen != built["planted"]:
            raise SystemExit(
                f"bench: best chose {chosen}, the planted winner is {built['planted']}"
            )
    if not keep:
        shutil.rmtree(root)
    load = os.getloadavg()[0]
    return {"tasks": n_tasks, **built, "parse": parsed, "best": ranked, "best_tensor": alone,
            "load": load}  # fmt: skip


def table(rows: list[dict]) -> str:
    """The Markdown table of every measured size: wall (CPU) seconds, memory in MiB."""
    head = (
        "| stores | parse s | parse peak above baseline | tensor | peak - tensor | "
        "best s (stores checked) | best s (tensor only) | best peak above baseline | "
        "build s | load average |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        p, b, a = r["parse"], r["best"], r["best_tensor"]
        growth = p["peak_mib"] - p["baseline_mib"]
        lines.append(
            f"| {r['stores']:,} | {p['seconds']:.1f} ({p['cpu_seconds']:.1f}) | {growth:.0f} | "
            f"{p['tensor_mib']:.0f} | {growth - p['tensor_mib']:.0f} | "
            f"{b['seconds']:.1f} ({b['cpu_seconds']:.1f}) | "
            f"{a['seconds']:.1f} ({a['cpu_seconds']:.1f}) | "
            f"{b['peak_mib'] - b['baseline_mib']:.0f} | {r['build_seconds']:.0f} | "
            f"{r['load']:.1f} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="1000,3000,10000", help="study sizes (multiples of 100)")
    p.add_argument("--updates", type=int, default=100, help="updates per run (default 100)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    p.add_argument("--keep", action="store_true", help="keep the studies (default: removed)")
    p.add_argument("--reuse", action="store_true", help="measure studies kept by --keep again")
    p.add_argument("--measure", nargs=2, metavar=("COMMAND", "STUDY_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    rows = []
    for n in (int(x) for x in args.tasks.split(",")):
        out = args.out.resolve()
        rows.append(bench_size(out, n, args.updates, args.workers, args.keep, args.reuse))
        r = rows[-1]
        print(
            f"{r['stores']:,} stores: built in {r['build_seconds']:.0f} s, parse "
            f"{r['parse']['seconds']:.1f} s, best {r['best']['seconds']:.1f} s "
            f"({r['best_tensor']['seconds']:.1f} s on the tensor alone)",
            flush=True,
        )
    print(table(rows))


if __name__ == "__main__":
    main()
