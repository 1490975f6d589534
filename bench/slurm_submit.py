"""Submit cost on SLURM: a 1000-task study as ONE array (``submit``) vs one sbatch per line.

``nox -s bench_slurm [-- --tasks N]`` (starts the local cluster when none answers). Every job is
submitted held (``--hold``) so nothing runs, then cancelled. Prints both times and their ratio,
and writes them to ``bench/out/slurm_submit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sweepax.launch import records, slurm
from sweepax.launch.records import Paths

OUT = Path(__file__).parent / "out" / "slurm_submit.json"


def make_study(project: Path, n: int) -> str:
    """A planned study of ``n`` trivial tasks in ``project/runs``."""
    study = f"bench{n}"
    runs = project / "runs"
    runs.mkdir(parents=True)
    tasks = [{"index": i, "task_id": f"t{i:06d}", "command": f"echo task {i}"} for i in range(n)]
    (runs / f"{study}.txt").write_text("".join(t["command"] + "\n" for t in tasks))
    (runs / f"{study}.json").write_text(json.dumps({"study": study, "tasks": tasks}))
    return study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    slurm.require_sbatch()
    with tempfile.TemporaryDirectory(prefix="sweepax-bench-") as tmp:
        project = Path(tmp)
        study = make_study(project, args.tasks)
        here = os.getcwd()
        os.chdir(project)
        try:
            t0 = time.perf_counter()
            rc = slurm.main([study, "--no-container", "--sbatch-arg=--hold"])
            t_array = time.perf_counter() - t0
        finally:
            os.chdir(here)
        assert rc == 0, "submit failed"
        array_ids = [r["job_id"] for r in records.read_submissions(Paths(project / "runs"), study)]
        subprocess.run(["scancel", *array_ids], check=True)

        lines = (project / "runs" / f"{study}.txt").read_text().splitlines()
        ids = []
        t0 = time.perf_counter()
        for line in lines:
            proc = subprocess.run(
                ["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", line],
                cwd=project,
                capture_output=True,
                text=True,
                check=True,
            )
            ids.append(proc.stdout.strip().split(";")[0])
        t_loop = time.perf_counter() - t0
        for i in range(0, len(ids), 500):
            subprocess.run(["scancel", *ids[i : i + 500]], check=True)

    result = {
        "tasks": args.tasks,
        "array_submit_s": round(t_array, 4),
        "array_jobs": len(array_ids),
        "sbatch_per_line_s": round(t_loop, 3),
        "ratio": round(t_loop / t_array, 1),
    }
    print(
        f"{args.tasks} tasks: submit as one array {t_array:.3f} s "
        f"({len(array_ids)} sbatch call(s), "
        f"script rendering and record included); one sbatch per line {t_loop:.2f} s; "
        f"ratio {t_loop / t_array:.0f}x"
    )
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
