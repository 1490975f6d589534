"""``nox -s run_local``: run a study's job-array lines on this machine, with progress and logs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.sweep import plan as planning
from sweepax.sweep.write_jobs import plan_targets

PROGRESS_RE = re.compile(r"progress: task \S+ update (\d+)/(\d+)")


@dataclasses.dataclass
class Job:
    """One task to run here."""

    study: str
    index: int
    task_id: str
    command: str
    log: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    status: str = "pending"


def load_manifests(targets: tp.Sequence[str], runs_dir: Path, max_vmap: int | None) -> list[dict]:
    """Manifests for targets: sweep files/folders are (re)planned into runs/, names read from it."""
    paths = [t for t in targets if Path(t).exists()]
    names = [t for t in targets if not Path(t).exists()]
    manifests = []
    for p in plan_targets(paths, max_vmap) if paths else []:
        planning.write(p, runs_dir)
        manifests.append(p.manifest())
    for name in names:
        path = runs_dir / f"{name}.json"
        if not path.is_file():
            raise UserError(
                f"{name}: no such sweep file, folder or planned study ({path} is missing); "
                "give the sweep file or run `nox -s write_jobs -- <sweep file>` first"
            )
        manifests.append(json.loads(path.read_text()))
    return manifests


def last_line(log: Path, pattern: str = "") -> str:
    """The last non-empty line of a log (containing ``pattern``), for status displays."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [ln.strip() for ln in lines if ln.strip() and pattern in ln]
    return lines[-1] if lines else ""


def _progress_of(log: Path) -> float:
    match = PROGRESS_RE.search(last_line(log, "progress:"))
    return int(match[1]) / int(match[2]) if match else 0.0


def _start(job: Job, env: dict[str, str]) -> None:
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("w") as log:
        log.write(f"$ {job.command}\n")
        log.flush()
        job.proc = subprocess.Popen(
            ["bash", "-c", job.command], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    job.started = time.perf_counter()
    job.status = "running"


def run_jobs(jobs: list[Job], parallel: int, console: Console) -> None:
    """Run ``jobs``, at most ``parallel`` at a time, showing one bar per running task."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    pending, running = list(jobs), []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        overall = bar.add_task(f"tasks (0/{len(jobs)} done)", total=len(jobs))
        rows: dict[int, int] = {}
        try:
            while pending or running:
                while pending and len(running) < parallel:
                    job = pending.pop(0)
                    _start(job, env)
                    running.append(job)
                    rows[id(job)] = bar.add_task(
                        f"{job.study}[{job.index}] {job.task_id}", total=1.0
                    )
                for job in list(running):
                    bar.update(rows[id(job)], completed=_progress_of(job.log))
                    if job.proc is None or job.proc.poll() is None:
                        continue
                    running.remove(job)
                    job.seconds = time.perf_counter() - job.started
                    job.status = "done" if job.proc.returncode == 0 else "failed"
                    bar.update(rows[id(job)], completed=1.0, visible=job.status == "failed")
                    done = sum(j.status in ("done", "failed") for j in jobs)
                    bar.update(
                        overall, completed=done, description=f"tasks ({done}/{len(jobs)} done)"
                    )
                    if job.status == "failed":
                        console.print(
                            f"[red]failed[/red] {job.study}[{job.index}] {job.task_id} "
                            f"(exit {job.proc.returncode}): {last_line(job.log)}  log: {job.log}",
                            soft_wrap=True,
                        )
                time.sleep(0.25)
        except KeyboardInterrupt:
            for job in running:
                if job.proc is not None:
                    job.proc.terminate()
            raise


def select_jobs(
    manifests: tp.Sequence[dict],
    results_dir: Path,
    logs_dir: Path,
    rerun: bool,
) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs skipped because a complete result store exists)."""
    from sweepax.results import store

    todo, skipped = [], []
    for manifest in manifests:
        study = manifest["study"]
        complete = (
            store.complete_stores(results_dir / study) if (results_dir / study).is_dir() else {}
        )
        for task in manifest["tasks"]:
            command = task["command"]
            if results_dir != Path("results"):
                command += " --results_dir " + shlex.quote(str(results_dir))
            job = Job(
                study,
                task["index"],
                task["task_id"],
                command,
                logs_dir / study / f"{task['index']}_{task['task_id']}.log",
            )
            if task["task_id"] in complete and not rerun:
                job.status = "skipped"
                skipped.append(job)
            else:
                todo.append(job)
    return todo, skipped


def summary_table(jobs: tp.Sequence[Job]) -> Table:
    """study | task | task id | status | seconds | log."""
    table = Table(title="run_local")
    for col in ("study", "task", "task id", "status", "seconds", "log"):
        table.add_column(col, no_wrap=col != "log")
    colour = {"done": "green", "failed": "red", "skipped": "dim"}
    for j in jobs:
        table.add_row(
            j.study,
            str(j.index),
            j.task_id,
            f"[{colour.get(j.status, '')}]{j.status}[/]",
            f"{j.seconds:.0f}" if j.seconds else "",
            str(j.log) if j.status != "skipped" else "",
        )
    return table


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Run the tasks of studies here."""
    parser = argparse.ArgumentParser(
        prog="nox -s run_local --",
        description="Run the job-array lines of studies on this machine (skips complete tasks).",
    )
    parser.add_argument("targets", nargs="+", help="sweep files, folders of them, or study names")
    parser.add_argument("--parallel", type=int, default=1, help="tasks at once (default 1)")
    parser.add_argument(
        "--missing",
        action="store_true",
        help="run only tasks without a complete result store (the default; kept for symmetry "
        "with `submit --missing`)",
    )
    parser.add_argument("--rerun", action="store_true", help="also rerun tasks that are complete")
    parser.add_argument("--max-vmap", type=int, default=None, help="when planning: N configs/task")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--logs-dir", type=Path, default=Path("logs"))
    args = parser.parse_args(argv)
    if args.parallel < 1:
        raise UserError(f"--parallel {args.parallel}: must be at least 1")
    if args.missing and args.rerun:
        raise UserError("--missing and --rerun contradict each other; pick one")
    console = make_console()
    manifests = load_manifests(args.targets, args.runs_dir, args.max_vmap)
    todo, skipped = select_jobs(manifests, args.results_dir, args.logs_dir, args.rerun)
    if skipped:
        console.print(f"skipping {len(skipped)} task(s) with a complete result store")
    console.print(
        f"running {len(todo)} task(s), {args.parallel} at a time; logs under {args.logs_dir}/"
    )
    run_jobs(todo, args.parallel, console)
    console.print(summary_table(todo + skipped))
    failed = [j for j in todo if j.status == "failed"]
    if failed:
        console.print(f"[red]{len(failed)} task(s) failed[/red]; see their logs above")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
