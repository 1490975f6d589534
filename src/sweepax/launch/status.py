"""``nox -s status``: per study, tasks complete / running / pending / failed / corrupt / unknown /
missing, and what else lies in the study's results folder (leftovers of killed writers).

A task is *complete* when its result store is (whatever SLURM says). Otherwise its newest recorded
submission (``runs/<study>.submissions.json``) is looked up with ``squeue`` (which knows finished
jobs for ``MinJobAge``), then ``sacct`` (when the cluster keeps accounting), then its log files:
- running / pending: SLURM says so, or a ``run_local`` on this host holds the task's claim;
- requeued: pending again after a restart (its time limit's warning signal, a preemption, or
  ``scontrol requeue``): it resumes from its checkpoint;
- preempted: SLURM preempted it without requeueing it; ``submit --missing`` resumes it from its
  checkpoint;
- failed: SLURM says it ended (failed, cancelled, timed out, or completed without writing a
  store), or it is gone from SLURM and left a log but no store;
- corrupt: its only store fails the check of its completion record (damaged); it is re-run
  like a missing task;
- unknown: it was submitted but SLURM cannot be asked (no ``squeue`` here, the controller does
  not answer, ``sacct`` fails): it may still be running, so it is never counted as failed or
  missing, and ``submit --missing`` leaves it alone unless forced;
- missing: never submitted, or gone from SLURM without a trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import typing as tp
from pathlib import Path

from rich.table import Table

from sweepax import checkpoint
from sweepax.console import make_console
from sweepax.errors import cli
from sweepax.launch import records
from sweepax.launch.records import Paths
from sweepax.results import store

STATES = (
    "complete",
    "running",
    "requeued",
    "pending",
    "preempted",
    "failed",
    "corrupt",
    "unknown",
    "missing",
)
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
PENDING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SUSPENDED", "STOPPED"}
# answers, not failures: the job left squeue (MinJobAge) / the cluster keeps no accounting
NOT_KNOWN_TO_SLURM = "Invalid job id specified"
NO_ACCOUNTING = "accounting storage is disabled"
SLURM_TIMEOUT_S = 120


@dataclasses.dataclass(frozen=True)
class SlurmAnswer:
    """What SLURM said about some array jobs."""

    states: dict[tuple[str, int], str]  # (array job id, array task id) -> SLURM state
    unasked: dict[str, str]  # array job id -> why SLURM could not be asked about it
    restarts: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)


# states ``submit --missing`` resubmits (a task with a checkpoint resumes from it)
RESUBMIT = ("preempted", "failed", "corrupt", "missing")
Query = tp.Callable[[tp.Sequence[str]], SlurmAnswer]


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
    restarts: int | None = None  # SLURM's restart count of the task (requeues, preemptions)
    checkpoint: str | None = None  # "k/N": the last update its newest checkpoint holds


def parse_squeue(text: str) -> dict[tuple[str, int], str]:
    """``squeue -h -r -t all`` lines ``job|task|state[|restarts|]`` (``SQUEUE_FIELDS``) ->
    {(array job id, task id): state}."""
    out = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 3 and fields[1].isdigit():
            out[(fields[0], int(fields[1]))] = fields[2]
    return out


def parse_restarts(text: str) -> dict[tuple[str, int], int]:
    """The same lines -> {(array job id, task id): restart count} (where squeue gave one)."""
    out = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 4 and fields[1].isdigit() and fields[3].isdigit():
            out[(fields[0], int(fields[1]))] = int(fields[3])
    return out


# array job id | array task id | state | restart count |
SQUEUE_FIELDS = "ArrayJobID:|,ArrayTaskID:|,State:|,RestartCnt:|"


def parse_sacct(text: str) -> dict[tuple[str, int], str]:
    """``sacct -n -P -X -o JobID,State`` lines (``12_3|FAILED``) -> {(job id, task id): state}."""
    out = {}
    for line in text.splitlines():
        job, _, state = line.strip().partition("|")
        array_id, _, task = job.partition("_")
        if task.isdigit():
            out[(array_id, int(task))] = state.split()[0] if state else ""
    return out


def ask(command: list[str]) -> tuple[str, str | None]:
    """(stdout, None) when the SLURM command answered, else ("", why it could not be asked)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S)
    except FileNotFoundError:
        return "", f"{command[0]} not found on PATH (run status where SLURM's commands are)"
    except subprocess.TimeoutExpired:
        return "", f"{command[0]} did not answer within {SLURM_TIMEOUT_S} s"
    if proc.returncode == 0:
        return proc.stdout, None
    lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    message = lines[-1] if lines else f"exit code {proc.returncode}"
    if NOT_KNOWN_TO_SLURM in message:
        return "", None
    return "", f"{command[0]} failed: {message}"


def query_slurm(job_ids: tp.Sequence[str]) -> SlurmAnswer:
    """States of every task of the given array jobs that SLURM still knows, and the jobs SLURM
    could not be asked about."""
    if not job_ids:
        return SlurmAnswer({}, {})
    squeue = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-O", SQUEUE_FIELDS]
    out, error = ask(squeue)
    if error is not None:
        return SlurmAnswer({}, dict.fromkeys(job_ids, error))
    states, restarts = parse_squeue(out), parse_restarts(out)
    gone = [j for j in job_ids if not any(k[0] == j for k in states)]
    if not gone or shutil.which("sacct") is None:
        return SlurmAnswer(states, {}, restarts)
    out, error = ask(["sacct", "-n", "-P", "-X", "-j", ",".join(gone), "-o", "JobID,State"])
    if error is None:
        return SlurmAnswer({**states, **parse_sacct(out)}, {}, restarts)
    if NO_ACCOUNTING in error:
        return SlurmAnswer(states, {}, restarts)
    return SlurmAnswer(states, dict.fromkeys(gone, error), restarts)


def error_line(err: Path, out: Path) -> str:
    """The line that best says why a task failed: SLURM's own (``slurmstepd: error: *** JOB 5
    ON node CANCELLED AT ... ***``; a task stopping on the signal logs after it), else the last
    of stderr, else of stdout."""
    return records.last_line(err, "***") or records.last_line(err) or records.last_line(out)


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
    corrupt = store.corrupt_stores(study_dir) if study_dir.is_dir() else {}
    newest = newest_submissions(paths, study)
    answer = query(sorted({job for job, _ in newest.values()}, key=int))

    rows = []
    for task in manifest["tasks"]:
        row = TaskStatus(task["index"], task["task_id"], "missing")
        sub = newest.get(row.index)
        slurm, logged = "", False
        if sub is not None:
            job, local = sub
            row.job = f"{job}_{local}"
            row.slurm_state = answer.states.get(sub)
            row.restarts = answer.restarts.get(sub)
            slurm = (row.slurm_state or "").rstrip("+")
            out = paths.slurm_log(study, job, local, "out")
            err = paths.slurm_log(study, job, local, "err")
            row.out, row.err = str(out), str(err)
            logged = out.exists() or err.exists()
        if row.task_id not in complete:
            row.checkpoint = checkpoint.last_saved(study_dir, row.task_id)
        here = (
            None
            if row.task_id in complete
            else records.running_here(paths.claim(study, row.index, row.task_id))
        )
        if row.task_id in complete:
            row.state = "complete"
        elif here is not None:
            row.state, row.last_line = "running", f"run_local: {records.describe_holder(here)}"
        elif sub is not None and sub[0] in answer.unasked:
            row.state, row.last_line = "unknown", answer.unasked[sub[0]]
        elif slurm in RUNNING:
            row.state = "running"
        elif slurm in PENDING:
            row.state = "requeued" if row.restarts or slurm.startswith("REQUEUE") else "pending"
        elif slurm == "PREEMPTED":
            row.state = "preempted"
        elif row.task_id in corrupt:
            path, reason = corrupt[row.task_id]
            row.state, row.last_line = "corrupt", f"{path}: {reason}"
        elif slurm or logged:
            row.state = "failed"
            row.last_line = error_line(Path(row.err or ""), Path(row.out or ""))
            if slurm == "COMPLETED" and not row.last_line:
                row.last_line = "ended without writing a complete result store"
        rows.append(row)
    return rows


def counts(rows: tp.Sequence[TaskStatus]) -> dict[str, int]:
    return {s: sum(r.state == s for r in rows) for s in STATES}


def status_table(report: tp.Mapping[str, tp.Sequence[TaskStatus]]) -> Table:
    """study | tasks | one count per state."""
    table = Table(title="status")
    for col in ("study", "tasks", *STATES):
        if col == "study":
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    colour = {
        "complete": "green",
        "running": "cyan",
        "requeued": "yellow",
        "pending": "yellow",
        "preempted": "magenta",
        "failed": "red",
        "corrupt": "red",
        "unknown": "magenta",
    }
    for study, rows in report.items():
        n = counts(rows)
        cells = [f"[{colour[s]}]{n[s]}[/]" if n[s] and s in colour else str(n[s]) for s in STATES]
        table.add_row(study, str(len(rows)), *cells)
    return table


def unknown_warning(study: str, rows: tp.Sequence[TaskStatus]) -> str | None:
    """One line saying which tasks SLURM could not be asked about, and why; None if none."""
    unknown = [r for r in rows if r.state == "unknown"]
    if not unknown:
        return None
    return (
        f"warning: {study}: SLURM could not be asked about {len(unknown)} task(s) "
        f"({records.condense(r.index for r in unknown)}): {unknown[0].last_line}; they are "
        "unknown, not failed or missing (they may still run): ask again when SLURM answers"
    )


def study_notes(study: str, rows: tp.Sequence[TaskStatus], paths: Paths) -> list[str]:
    """Lines under the table: each requeued, preempted, failed or corrupt task, unknown tasks,
    leftovers in the study's results folder, and what to do next."""
    lines = [
        f"{r.state} {study}[{r.index}] {r.task_id} job {r.job} (restarts: {r.restarts or 0}): "
        + (f"checkpoint at update {r.checkpoint}" if r.checkpoint else "no checkpoint yet")
        + ("" if r.state == "requeued" else f"  log: {r.out}")
        for r in rows
        if r.state in ("requeued", "preempted")
    ]
    lines += [
        f"[red]failed[/red] {study}[{r.index}] {r.task_id} job {r.job} "
        f"({r.slurm_state or 'gone from SLURM'}): {r.last_line}  log: {r.err}"
        + (f"  (checkpoint at update {r.checkpoint}: a rerun resumes)" if r.checkpoint else "")
        for r in rows
        if r.state == "failed"
    ]
    lines += [
        f"[red]corrupt[/red] {study}[{r.index}] {r.task_id}: {r.last_line}"
        for r in rows
        if r.state == "corrupt"
    ]
    warning = unknown_warning(study, rows)
    if warning:
        lines.append(f"[magenta]{warning}[/magenta]")
    lines += leftover_lines(study, paths)
    missing = [r.index for r in rows if r.state in RESUBMIT]
    if missing:
        if records.submitted(paths, study):
            fix = f"`nox -s submit -- {study} --missing` resubmits them"
        else:
            fix = f"`nox -s run_local -- {study}` runs them here (never submitted to SLURM)"
        lines.append(f"{study}: {len(missing)} task(s) without a result: {fix}")
    return lines


def leftover_lines(study: str, paths: Paths) -> list[str]:
    """One line per leftover in ``results/<study>/`` (``store.leftovers``), saying whether
    ``nox -s clean`` removes it."""
    moved = paths.results_dir != Paths().results_dir
    clean = f"nox -s clean -- {study}" + (f" --results-dir {paths.results_dir}" if moved else "")
    return [
        f"leftover {study}: {x.path} ({x.kind}: {x.reason}); "
        + (f"`{clean}` removes it" if x.removable else "`nox -s clean` keeps it")
        for x in store.leftovers(paths.results(study))
    ]


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Show the state of every task of studies."""
    parser = argparse.ArgumentParser(
        prog="nox -s status --",
        description="Per study: tasks complete / running / pending / failed / unknown / missing.",
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
        for study, rows in report.items():
            warning = unknown_warning(study, rows)
            if warning:
                print(warning, file=sys.stderr)
        print(json.dumps({s: [dataclasses.asdict(r) for r in rows] for s, rows in report.items()}))
        return 0
    console.print(status_table(report))
    for study, rows in report.items():
        for line in study_notes(study, rows, paths):
            console.print(line, highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
