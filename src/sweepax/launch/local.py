"""``nox -s run_local``: run a study's job-array lines on this machine, with progress and logs."""

from __future__ import annotations

import argparse
import dataclasses
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
from sweepax.launch import records
from sweepax.launch.records import Paths
from sweepax.results import store

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


def _progress_of(log: Path) -> float:
    match = PROGRESS_RE.search(records.last_line(log, "progress:"))
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
                            f"(exit {job.proc.returncode}): {records.last_line(job.log)}  "
                            f"log: {job.log}",
                            soft_wrap=True,
                        )
                time.sleep(0.25)
        except KeyboardInterrupt:
            for job in running:
                if job.proc is not None:
                    job.proc.terminate()
            raise


def select_jobs(
    manifests: tp.Sequence[dict], paths: Paths, rerun: bool
) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs skipped because a complete result store exists)."""
    todo, skipped = [], []
    for manifest in manifests:
        study = manifest["study"]
        study_dir = paths.results(study)
        complete = store.complete_stores(study_dir) if study_dir.is_dir() else {}
        for task in manifest["tasks"]:
            command = task["command"]
            if paths.results_dir != Paths().results_dir:
                command += " --results_dir " + shlex.quote(str(paths.results_dir))
            job = Job(
                study,
                task["index"],
                task["task_id"],
                command,
                paths.logs(study) / f"{task['index']}_{task['task_id']}.log",
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
    records.add_arguments(parser)
    args = parser.parse_args(argv)
    paths = Paths.from_args(args)
    if args.parallel < 1:
        raise UserError(f"--parallel {args.parallel}: must be at least 1")
    if args.missing and args.rerun:
        raise UserError("--missing and --rerun contradict each other; pick one")
    console = make_console()
    manifests = records.plan_manifests(args.targets, paths, args.max_vmap)
    todo, skipped = select_jobs(manifests, paths, args.rerun)
    if skipped:
        console.print(f"skipping {len(skipped)} task(s) with a complete result store")
    console.print(
        f"running {len(todo)} task(s), {args.parallel} at a time; logs under {paths.logs_dir}/"
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
