"""``nox -s run_local``: run a study's job-array lines on this machine, with progress and logs."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as tp
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from sweepax import provenance
from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.files import remove, temp_path, utc_now, utc_stamp
from sweepax.launch import records
from sweepax.launch.records import Paths
from sweepax.results import store
from sweepax.sweep import write_jobs

PROGRESS_RE = re.compile(r"progress: task \S+ update (\d+)/(\d+)")


@dataclasses.dataclass
class Job:
    """One task to run here."""

    study: str
    index: int
    task_id: str
    command: str
    paths: Paths
    store_before: Path | None = None  # its complete store when the run began (with --rerun)
    log: Path | None = None  # this run's log, once started
    claim: records.Claim | None = None
    holder: dict[str, tp.Any] = dataclasses.field(default_factory=dict)  # what the claim records
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    status: str = "pending"  # running | done | failed | skipped | held
    note: str = ""  # why it was skipped, who holds it, or why it runs again

    @property
    def name(self) -> str:
        return f"{self.study}[{self.index}] {self.task_id}"


def _progress_of(log: Path | None) -> float:
    match = PROGRESS_RE.search(records.last_line(log, "progress:")) if log else None
    return int(match[1]) / int(match[2]) if match else 0.0


def take(job: Job) -> bool:
    """Claim ``job`` for this run; False (with the reason in ``job.note``) when another run
    holds it or its store became complete since this run chose its tasks."""
    job.holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": utc_now()}
    got = records.claim(job.paths.claim(job.study, job.index, job.task_id), job.holder)
    if not isinstance(got, records.Claim):
        job.status, job.note = (
            "held",
            f"another run_local holds it ({records.describe_holder(got)})",
        )
        return False
    study_dir = job.paths.results(job.study)
    now = store.complete_stores(study_dir).get(job.task_id) if study_dir.is_dir() else None
    if now is not None and now != job.store_before:
        got.release()
        job.status, job.note = "skipped", f"completed meanwhile: {now}"
        return False
    job.claim = got
    return True


def link_latest(log: Path, link: Path) -> None:
    """Point ``link`` at ``log`` (same folder); a plain file already there is kept, renamed."""
    if link.exists() and not link.is_symlink():
        mtime = dt.datetime.fromtimestamp(link.stat().st_mtime, dt.UTC)
        os.rename(link, link.with_name(f"{link.stem}.{mtime:%Y%m%dT%H%M%S%fZ}.log"))
    tmp = temp_path(link)
    remove(tmp)
    os.symlink(log.name, tmp)
    os.replace(tmp, link)


def start(job: Job, env: dict[str, str]) -> None:
    """Start the claimed ``job`` with a log of its own; the task's process shares the claim."""
    assert job.claim is not None
    job.log = job.paths.run_log(job.study, job.index, job.task_id, utc_stamp())
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with job.log.open("x") as log:
        log.write(f"$ {job.command}\n")
        log.write(f"# run_local on {socket.gethostname()}, pid {os.getpid()}, at {utc_now()}\n")
        log.flush()
        job.proc = subprocess.Popen(
            ["bash", "-c", job.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(job.claim.fd,),
        )
    # the task keeps the claim if this run dies first: say which process it is
    job.claim.record({**job.holder, "task_pid": job.proc.pid})
    link_latest(job.log, job.paths.latest_log(job.study, job.index, job.task_id))
    job.started = time.perf_counter()
    job.status = "running"


def finish(job: Job) -> bool:
    """If ``job``'s process ended: record how, release its claim, True."""
    if job.proc is None or job.proc.poll() is None:
        return False
    job.seconds = time.perf_counter() - job.started
    job.status = "done" if job.proc.returncode == 0 else "failed"
    if job.claim is not None:
        job.claim.release()
        job.claim = None
    return True


def task_environment(parallel: int = 1) -> dict[str, str]:
    """The tasks' environment: this Python's folder first on PATH, unbuffered output, and
    ``parallel`` tasks at once sharing the cores: each makes its share of JAX CPU devices
    (``SWEEPAX_CPU_DEVICES``, unless it is set already)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    if parallel > 1:
        cores = provenance.usable_cores()
        env.setdefault("SWEEPAX_CPU_DEVICES", str(max(1, cores // parallel)))
    return env


def run_jobs(jobs: list[Job], parallel: int, console: Console) -> None:
    """Run ``jobs``, at most ``parallel`` at a time, showing one bar per running task.

    Each task is claimed just before it starts: tasks another run holds, or that became
    complete meanwhile, are skipped, so several runs of one study share its tasks.
    """
    env = task_environment(parallel)
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

        def count_done() -> None:
            done = sum(j.status not in ("pending", "running") for j in jobs)
            bar.update(overall, completed=done, description=f"tasks ({done}/{len(jobs)} done)")

        interrupted: list[int] = []  # Ctrl-C seen: stop between steps, never inside one

        def on_interrupt(signum: int, frame: tp.Any) -> None:
            if interrupted:  # a second Ctrl-C: KeyboardInterrupt at once
                raise KeyboardInterrupt
            interrupted.append(signum)

        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
        try:
            while pending or running:
                if interrupted:
                    raise KeyboardInterrupt
                while pending and len(running) < parallel:
                    job = pending.pop(0)
                    if not take(job):
                        console.print(f"skipping {job.name}: {job.note}", soft_wrap=True)
                        count_done()
                        continue
                    start(job, env)
                    running.append(job)
                    rows[id(job)] = bar.add_task(job.name, total=1.0)
                for job in list(running):
                    if interrupted:
                        break
                    bar.update(rows[id(job)], completed=_progress_of(job.log))
                    if not finish(job):
                        continue
                    running.remove(job)
                    bar.update(rows[id(job)], completed=1.0, visible=job.status == "failed")
                    count_done()
                    if job.status == "failed":
                        assert job.proc is not None and job.log is not None
                        console.print(
                            f"[red]failed[/red] {job.name} (exit {job.proc.returncode}): "
                            f"{records.last_line(job.log)}  log: {job.log}",
                            soft_wrap=True,
                        )
                time.sleep(0.25)
        except KeyboardInterrupt:
            stop_running(running, console)
            raise
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)


def stop_running(running: tp.Sequence[Job], console: Console) -> None:
    """Ctrl-C: ask every running task to checkpoint and stop (SIGTERM; each saves at the end of
    its chunk of updates), and wait for them; a second Ctrl-C kills them at once."""
    live = [j for j in running if j.proc is not None and j.status == "running"]
    if not live:
        return
    console.print(
        f"interrupted: {len(live)} running task(s) checkpoint and stop; running this again "
        "resumes them (Ctrl-C again kills them now)",
        soft_wrap=True,
    )
    try:
        for job in live:
            job.proc.terminate()  # type: ignore[union-attr]
        for job in live:
            job.proc.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        for job in live:
            job.proc.kill()  # type: ignore[union-attr]
        raise
    finally:
        for job in live:
            finish(job)


def select_jobs(
    manifests: tp.Sequence[dict], paths: Paths, rerun: bool
) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs skipped because a complete result store exists)."""
    todo, skipped = [], []
    for manifest in manifests:
        study = manifest["study"]
        study_dir = paths.results(study)
        complete = store.complete_stores(study_dir) if study_dir.is_dir() else {}
        corrupt = store.corrupt_stores(study_dir) if study_dir.is_dir() else {}
        for task in manifest["tasks"]:
            command = task["command"]
            if paths.results_dir != Paths().results_dir:
                command += " --results_dir " + shlex.quote(str(paths.results_dir))
            job = Job(study, task["index"], task["task_id"], command, paths)
            job.store_before = complete.get(job.task_id)
            if job.task_id in corrupt:
                path, reason = corrupt[job.task_id]
                job.note = f"its store is damaged ({path}: {reason})"
            if job.store_before is not None and not rerun:
                job.status = "skipped"
                skipped.append(job)
            else:
                todo.append(job)
    return todo, skipped


def summary_table(jobs: tp.Sequence[Job]) -> Table:
    """study | task | task id | status | seconds | log (or why it was skipped)."""
    table = Table(title="run_local")
    for col in ("study", "task", "task id", "status", "seconds", "log"):
        table.add_column(col, no_wrap=col != "log")
    colour = {"done": "green", "failed": "red", "skipped": "dim", "held": "yellow"}
    for j in jobs:
        table.add_row(
            j.study,
            str(j.index),
            j.task_id,
            f"[{colour.get(j.status, '')}]{j.status}[/]",
            f"{j.seconds:.0f}" if j.seconds else "",
            str(j.log) if j.log else j.note,
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
    write_jobs.add_platform_argument(parser)
    records.add_arguments(parser)
    args = parser.parse_args(argv)
    paths = Paths.from_args(args)
    if args.parallel < 1:
        raise UserError(f"--parallel {args.parallel}: must be at least 1")
    if args.missing and args.rerun:
        raise UserError("--missing and --rerun contradict each other; pick one")
    console = make_console()
    manifests = records.plan_manifests(args.targets, paths, args.max_vmap, args.platform)
    todo, skipped = select_jobs(manifests, paths, args.rerun)
    if skipped:
        console.print(f"skipping {len(skipped)} task(s) with a complete result store")
    for job in todo:
        if job.note:
            console.print(f"re-running {job.name}: {job.note}", soft_wrap=True)
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
