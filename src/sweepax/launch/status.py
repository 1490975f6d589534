"""``nox -s status``: per study, tasks complete / running / pending / failed / missing.

A task is *complete* when its result store is (whatever SLURM says). Otherwise its newest recorded
submission (``runs/<study>.submissions.json``) is looked up with ``squeue`` (which knows finished
jobs for ``MinJobAge``), then ``sacct`` (when the cluster keeps accounting), then its log files:
- running / pending: SLURM says so;
- failed: SLURM says it ended (failed, cancelled, timed out, or completed without writing a
  store), or it is gone from SLURM and left a log but no store;
- missing: never submitted, or gone from SLURM without a trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import typing as tp
from pathlib import Path

from rich.table import Table

from sweepax.console import make_console
from sweepax.errors import cli
from sweepax.launch import records
from sweepax.launch.records import Paths
from sweepax.results import store

STATES = ("complete", "running", "pending", "failed", "missing")
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
PENDING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SUSPENDED", "STOPPED"}

Query = tp.Callable[[tp.Sequence[str]], dict[tuple[str, int], str]]


@dataclasses.dataclass
class TaskStatus:
    """What is known about one task of a study."""

    index: int
    task_id: str
    state: str
    job: str | None = None  # "<array job id>_<array task id>" of the newest submission
    slurm_state: str | None = None
    out: str | None = None
    err: str | None = None
    last_line: str = ""


def parse_squeue(text: str) -> dict[tuple[str, int], str]:
    """``squeue -h -r -t all -o '%F|%K|%T'`` lines -> {(array job id, task id): state}."""
    out = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 3 and fields[1].isdigit():
            out[(fields[0], int(fields[1]))] = fields[2]
    return out


def parse_sacct(text: str) -> dict[tuple[str, int], str]:
    """``sacct -n -P -X -o JobID,State`` lines (``12_3|FAILED``) -> {(job id, task id): state}."""
    out = {}
    for line in text.splitlines():
        job, _, state = line.strip().partition("|")
        array_id, _, task = job.partition("_")
        if task.isdigit():
            out[(array_id, int(task))] = state.split()[0] if state else ""
    return out


def query_slurm(job_ids: tp.Sequence[str]) -> dict[tuple[str, int], str]:
    """States of every task of the given array jobs that SLURM still knows."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    ids = ",".join(job_ids)
    proc = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", ids, "-o", "%F|%K|%T"],
        capture_output=True,
        text=True,
    )
    states = parse_squeue(proc.stdout)
    unknown = [j for j in job_ids if not any(k[0] == j for k in states)]
    if unknown and shutil.which("sacct"):
        proc = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(unknown), "-o", "JobID,State"],
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            states.update(parse_sacct(proc.stdout))
    return states


def error_line(err: Path, out: Path) -> str:
    """The line that best says why a task failed: the last of stderr, else of stdout."""
    return records.last_line(err) or records.last_line(out)


def newest_submissions(paths: Paths, study: str) -> dict[int, tuple[str, int]]:
    """index -> (array job id, array task id) of the newest array submission of each task."""
    newest: dict[int, tuple[str, int]] = {}
    for rec in records.read_submissions(paths, study):
        if rec.get("kind", "array") != "array" or not rec.get("job_id"):
            continue
        for local in records.expand(rec["array"]):
            newest[local + rec["offset"]] = (str(rec["job_id"]), local)
    return newest


def study_status(manifest: dict, paths: Paths, query: Query = query_slurm) -> list[TaskStatus]:
    """One ``TaskStatus`` per task of the study, in index order."""
    study = manifest["study"]
    study_dir = paths.results(study)
    complete = store.complete_stores(study_dir) if study_dir.is_dir() else {}
    newest = newest_submissions(paths, study)
    states = query(sorted({job for job, _ in newest.values()}, key=int)) if newest else {}

    rows = []
    for task in manifest["tasks"]:
        row = TaskStatus(task["index"], task["task_id"], "missing")
        sub = newest.get(row.index)
        if sub is not None:
            job, local = sub
            row.job = f"{job}_{local}"
            row.slurm_state = states.get(sub)
            out = paths.slurm_log(study, job, local, "out")
            err = paths.slurm_log(study, job, local, "err")
            row.out, row.err = str(out), str(err)
        if row.task_id in complete:
            row.state = "complete"
        elif sub is not None:
            slurm = (row.slurm_state or "").rstrip("+")
            if slurm in RUNNING:
                row.state = "running"
            elif slurm in PENDING:
                row.state = "pending"
            elif slurm or out.exists() or err.exists():
                row.state = "failed"
                row.last_line = error_line(err, out)
                if slurm == "COMPLETED" and not row.last_line:
                    row.last_line = "ended without writing a complete result store"
        rows.append(row)
    return rows


def counts(rows: tp.Sequence[TaskStatus]) -> dict[str, int]:
    return {s: sum(r.state == s for r in rows) for s in STATES}


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Show the state of every task of studies."""
    parser = argparse.ArgumentParser(
        prog="nox -s status --",
        description="Per study: tasks complete / running / pending / failed / missing.",
    )
    parser.add_argument(
        "studies", nargs="*", help="study names or sweep files (default: all in runs/)"
    )
    parser.add_argument("--json", action="store_true", help="print every task as JSON")
    records.add_arguments(parser)
    args = parser.parse_args(argv)
    paths = Paths.from_args(args)
    console = make_console()
    report = {
        manifest["study"]: study_status(manifest, paths)
        for manifest in records.read_manifests(args.studies, paths)
    }
    if args.json:
        print(json.dumps({s: [dataclasses.asdict(r) for r in rows] for s, rows in report.items()}))
        return 0
    table = Table(title="status")
    for col in ("study", "tasks", *STATES):
        if col == "study":
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    colour = {"complete": "green", "running": "cyan", "pending": "yellow", "failed": "red"}
    for study, rows in report.items():
        n = counts(rows)
        cells = [f"[{colour[s]}]{n[s]}[/]" if n[s] and s in colour else str(n[s]) for s in STATES]
        table.add_row(study, str(len(rows)), *cells)
    console.print(table)
    for study, rows in report.items():
        for r in rows:
            if r.state == "failed":
                console.print(
                    f"[red]failed[/red] {study}[{r.index}] {r.task_id} job {r.job} "
                    f"({r.slurm_state or 'gone from SLURM'}): {r.last_line}  log: {r.err}",
                    highlight=False,
                )
        missing = [r.index for r in rows if r.state in ("failed", "missing")]
        if missing:
            console.print(
                f"{study}: {len(missing)} task(s) without a result: "
                f"`nox -s submit -- {study} --missing` resubmits them"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
